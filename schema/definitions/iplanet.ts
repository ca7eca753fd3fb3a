/**
 * Netscape / iPlanet / Sun Java System Messaging Server schema: the mail
 * routing and hosted-domain classes (inetDomain, mailDomain,
 * mailRoutingObject, inetUser, inetMailUser, inetLocalMailRecipient,
 * mailRecipient, mailGroup, inetMailGroup) and the attributes they name.
 *
 * Sources: 389 DS 20subscriber.ldif / 50ns-mail.ldif (Netscape Messaging 4.x
 * and subscriber-interoperability schema, 2.16.840.1.113730.3.*), the Sun
 * Java Communications Suite 5 Schema Reference (Messaging Server 5/6 OIDs),
 * and draft-lachman-laser-ldap-mail-routing (via OpenLDAP misc.schema).
 * Netscape/Sun "cis" syntax is mapped to caseIgnoreMatch over Directory
 * String; attributes holding host names or addresses use IA5 String with
 * caseIgnoreIA5Match, as the laser draft and RFC 4524 'mail' do.
 *
 * NOT VERIFIED — under dcmx's arc 1.3.6.1.4.1.32473.1 (see dcmx.ts):
 *   - object class mailDomain (1.3.6.1.4.1.32473.1.2.1, defined below): the
 *     Sun docs describe it but we found no published OID;
 *   - object class mailRoutingObject (1.3.6.1.4.1.32473.1.2.2, defined
 *     below): iPlanet directories carry it next to mailRoutingSmartHost /
 *     mailRoutingHosts; we found neither a published OID nor its published
 *     definition, so it is auxiliary and allows exactly those two;
 *   - attribute types mailDomainStatus, mailDomainCatchallAddress,
 *     mailDomainAllowedServiceAccess, mailDomainMsgMaxBlocks,
 *     mailDomainReportAddress, mailEquivalentAddress, mailMsgMaxBlocks,
 *     mailAllowedServiceAccess (Sun docs give "OID Unknown", or none found);
 *     they are defined in dcmx.ts.
 *
 * Conflicts in the public schemas and how they are resolved:
 *   - 2.16.840.1.113730.3.1.13 is 'mailAlternateAddress' for Netscape/Sun/389
 *     and 'mailLocalAddress' in the laser draft (OpenLDAP misc.schema,
 *     sendmail). Same OID, same meaning: one attribute with both names,
 *     mailAlternateAddress first.
 *   - 'mailRoutingAddress' is 2.16.840.1.113730.3.1.24 for Netscape, Sun
 *     (inetLocalMailRecipient) and 389, but 2.16.840.1.113730.3.1.47 in the
 *     laser draft / OpenLDAP misc.schema. A name can have one OID: we use .24
 *     (three implementations agree) and do not define .47. Clients address
 *     attributes by name, so sendmail/postfix LDAP lookups are unaffected.
 *   - inetLocalMailRecipient: Sun's docs print 2.16.840.1.113.730.3.2.147, an
 *     evident typo (OpenLDAP notes it too); 2.16.840.1.113730.3.2.147 is used.
 *     Its MAY list is Sun's (mail, mailAlternateAddress, mailHost,
 *     mailRoutingAddress), which covers the laser draft's through the shared
 *     .13 attribute.
 *   - mailGroup (2.16.840.1.113730.3.2.4) is AUXILIARY with no MUST in 389's
 *     50ns-mail.ldif (Netscape Messaging 4.x) but STRUCTURAL MUST (cn $ mail)
 *     in 389's 60inetmail.ldif and in Solaris' mail-alias schema. We follow
 *     the Netscape Messaging definition (auxiliary), like the other classes
 *     here, without mgrpApprovePassword (no OID published).
 *   - mailRecipient's Netscape MAY list names 'multiLineDescription', whose
 *     OID we could not verify; it is left out. inetUser's 'memberOf' (an AD
 *     OID, deprecated for this class by Sun) is left out too.
 *   - inetMailUser and inetMailGroup are trimmed to the attributes defined
 *     here; Sun's lists also name calendar, anti-UBE, conversion-tag and
 *     other attributes dcmx does not use.
 */
import type { AttributeTypeDef, SchemaModule } from '../types';
import { DCMX_OC } from './dcmx';

const NS = '2.16.840.1.113730.3.1';

/** A Netscape/Sun "cis" attribute: case-ignore Directory String. */
function cis(oid: string, name: string, desc: string, singleValue = false): AttributeTypeDef {
  return { oid, names: [name], desc, equality: 'caseIgnoreMatch', syntax: 'directoryString', ...(singleValue ? { singleValue } : {}) };
}

/** A host name or mail address: case-ignore IA5 String. */
function ia5(oid: string, name: string, desc: string, singleValue = false): AttributeTypeDef {
  return { oid, names: [name], desc, equality: 'caseIgnoreIA5Match', syntax: 'ia5String', ...(singleValue ? { singleValue } : {}) };
}

/** An integer attribute. */
function int(oid: string, name: string, desc: string, singleValue = false): AttributeTypeDef {
  return {
    oid,
    names: [name],
    desc,
    equality: 'integerMatch',
    ordering: 'integerOrderingMatch',
    syntax: 'integer',
    ...(singleValue ? { singleValue } : {}),
  };
}

export const iplanet: SchemaModule = {
  name: 'iplanet',
  attributeTypes: [
    // ---- Netscape subscriber interoperability (389 20subscriber.ldif) ----
    {
      oid: `${NS}.690`,
      names: ['inetDomainBaseDN'],
      desc: 'Base DN of user subtree for a DNS domain',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
    },
    cis(`${NS}.691`, 'inetDomainStatus', 'status of a domain: active, inactive or deleted', true),
    cis(`${NS}.692`, 'inetUserStatus', 'status of a user: active, inactive or deleted', true),
    ia5(`${NS}.693`, 'inetUserHttpURL', "a user's Web addresses"),

    // ---- Netscape Messaging Server 4.x (389 50ns-mail.ldif), used by Sun MS 5/6 ----
    cis(`${NS}.12`, 'mailAccessDomain', 'domains or hosts from which the user may log in for POP/IMAP'),
    {
      oid: `${NS}.13`,
      names: ['mailAlternateAddress', 'mailLocalAddress'],
      desc: 'additional RFC 822 addresses of this recipient',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
      syntaxLen: 256,
    },
    cis(`${NS}.14`, 'mailAutoReplyMode', 'auto-reply mode of the mail user'),
    cis(`${NS}.15`, 'mailAutoReplyText', 'auto-reply text'),
    cis(`${NS}.16`, 'mailDeliveryOption', 'delivery mechanism for the mail user'),
    cis(`${NS}.17`, 'mailForwardingAddress', "address to which the user's mail is forwarded"),
    {
      oid: `${NS}.18`,
      names: ['mailHost'],
      desc: 'FQDN of the SMTP/MTA of this recipient',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
      syntaxLen: 256,
      singleValue: true,
    },
    ia5(`${NS}.19`, 'mailMessageStore', "message store partition of the user's mailbox", true),
    {
      oid: `${NS}.20`,
      names: ['mailProgramDeliveryInfo'],
      desc: 'programs used for program delivery',
      equality: 'caseExactIA5Match',
      syntax: 'ia5String',
    },
    cis(`${NS}.21`, 'mailQuota', "disk space allowed for the user's mailbox", true),
    {
      oid: `${NS}.24`,
      names: ['mailRoutingAddress'],
      desc: 'RFC 822 routing address of this recipient',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
      syntaxLen: 256,
      singleValue: true,
    },
    ia5(`${NS}.22`, 'mgrpAllowedBroadcaster', 'mail user allowed to send to the group'),
    cis(`${NS}.23`, 'mgrpAllowedDomain', 'domains from which users may send to the group'),
    ia5(`${NS}.25`, 'mgrpDeliverTo', 'LDAP URL identifying members of the group'),
    ia5(`${NS}.26`, 'mgrpErrorsTo', 'address to which delivery errors are sent', true),
    cis(`${NS}.28`, 'mgrpMsgRejectAction', 'action taken when a message to the group is rejected'),
    ia5(`${NS}.29`, 'mgrpMsgRejectText', 'text returned when a message to the group is rejected'),
    {
      oid: `${NS}.30`,
      names: ['mgrpRFC822MailMember'],
      desc: 'RFC 822 mail address of email only member of group',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
      syntaxLen: 256,
    },
    cis(`${NS}.32`, 'mgrpMsgMaxSize', 'largest message that may be sent to the group', true),
    ia5(`${NS}.33`, 'mgrpModerator', 'address to which rejected messages are sent'),
    ia5(`${NS}.781`, 'mgrpAddHeader', 'header added to messages sent to the group'),
    cis(`${NS}.788`, 'mgrpBroadcasterPolicy', 'policy for determining allowed broadcasters'),
    cis(`${NS}.789`, 'mgrpNoDuplicateChecks', 'disables duplicate checks for the group', true),
    cis(`${NS}.801`, 'mgrpRemoveHeader', 'header removed from messages sent to the group'),

    // ---- Sun Messaging Server 5/6 (Sun Communications Suite 5 Schema Reference) ----
    ia5(`${NS}.759`, 'mailRoutingHosts', 'hosts responsible for mail of the domain'),
    ia5(`${NS}.760`, 'mailRoutingSmartHost', 'mail server for users not found in the local directory', true),
    ia5(`${NS}.761`, 'preferredMailHost', 'mailHost given to users created in the domain', true),
    cis(`${NS}.765`, 'mailDomainWelcomeMessage', 'welcome message sent to new users of the domain', true),
    int(`${NS}.768`, 'mailClientAttachmentQuota', 'attachments per message a webmail user may send (-1: no limit)', true),
    int(`${NS}.771`, 'mailAutoReplyTimeOut', 'hours between successive auto-replies to one sender', true),
    int(`${NS}.774`, 'mailMsgQuota', 'maximum number of messages in the mailbox', true),
    cis(`${NS}.775`, 'mailSieveRuleSource', 'Sieve (RFC 3028) script for the entry'),
    cis(`${NS}.778`, 'mailUserStatus', 'mail status of the user: active, inactive, disabled, deleted, hold, overquota, removed', true),
    cis(`${NS}.786`, 'inetMailGroupStatus', 'status of the mail group: active, inactive, disabled, deleted', true),
  ],

  objectClasses: [
    {
      oid: '2.16.840.1.113730.3.2.129',
      names: ['inetDomain'],
      desc: 'Auxiliary class for virtual domain nodes',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['inetDomainBaseDN', 'inetDomainStatus'],
    },
    {
      oid: `${DCMX_OC}.1`, // no published OID found; see the file header
      names: ['mailDomain'],
      desc: 'mail service attributes of a hosted domain (Sun Messaging Server)',
      sup: ['top'],
      kind: 'auxiliary',
      may: [
        'mailDomainStatus', 'mailRoutingHosts', 'mailRoutingSmartHost',
        'preferredMailHost', 'mailDomainCatchallAddress',
        'mailDomainAllowedServiceAccess', 'mailDomainMsgMaxBlocks',
        'mailDomainReportAddress', 'mailDomainWelcomeMessage',
        'mailClientAttachmentQuota', 'mailQuota', 'preferredLanguage',
        // dcmx: the users who manage the domain's mailboxes (server/directory/access.ts).
        'owner',
      ],
    },
    {
      oid: `${DCMX_OC}.2`, // no published OID found; see the file header
      names: ['mailRoutingObject'],
      desc: 'mail routing of an entry: its routing hosts and smart host (iPlanet Messaging Server)',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['mailRoutingHosts', 'mailRoutingSmartHost'],
    },
    {
      oid: '2.16.840.1.113730.3.2.130',
      names: ['inetUser'],
      desc: 'Auxiliary class which must be present in an entry for delivery of subscriber services',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['uid', 'inetUserStatus', 'inetUserHttpURL', 'userPassword'],
    },
    {
      oid: '2.16.840.1.113730.3.2.146',
      names: ['inetMailUser'],
      desc: 'messaging service user (Sun Messaging Server)',
      // Sun's inetMailUser extends mailRecipient (mail, mailAlternateAddress, mailHost, ...).
      sup: ['mailRecipient'],
      kind: 'auxiliary',
      may: [
        'cn', 'mailAllowedServiceAccess', 'mailAutoReplyMode', 'mailAutoReplyText',
        'mailAutoReplyTimeOut', 'mailDeliveryOption', 'mailEquivalentAddress',
        'mailForwardingAddress', 'mailMessageStore', 'mailMsgMaxBlocks',
        'mailMsgQuota', 'mailProgramDeliveryInfo', 'mailQuota',
        'mailSieveRuleSource', 'mailUserStatus',
      ],
    },
    {
      oid: '2.16.840.1.113730.3.2.147',
      names: ['inetLocalMailRecipient'],
      desc: 'Internet local mail recipient',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['mail', 'mailAlternateAddress', 'mailHost', 'mailRoutingAddress'],
    },
    {
      oid: '2.16.840.1.113730.3.2.3',
      names: ['mailRecipient'],
      desc: 'Netscape Messaging Server mail account',
      sup: ['top'],
      kind: 'auxiliary',
      may: [
        'cn', 'mail', 'mailAlternateAddress', 'mailHost', 'mailRoutingAddress',
        'mailAccessDomain', 'mailAutoReplyMode', 'mailAutoReplyText',
        'mailDeliveryOption', 'mailForwardingAddress', 'mailMessageStore',
        'mailProgramDeliveryInfo', 'mailQuota', 'uid', 'userPassword',
      ],
    },
    {
      oid: '2.16.840.1.113730.3.2.4',
      names: ['mailGroup'],
      desc: 'Netscape Messaging Server mail group',
      sup: ['top'],
      kind: 'auxiliary',
      may: [
        'cn', 'mail', 'mailAlternateAddress', 'mailHost', 'mailRoutingAddress',
        'mgrpAddHeader', 'mgrpAllowedBroadcaster', 'mgrpAllowedDomain',
        'mgrpBroadcasterPolicy', 'mgrpDeliverTo', 'mgrpErrorsTo', 'mgrpModerator',
        'mgrpMsgMaxSize', 'mgrpMsgRejectAction', 'mgrpMsgRejectText',
        'mgrpNoDuplicateChecks', 'mgrpRemoveHeader', 'mgrpRFC822MailMember', 'owner',
      ],
    },
    {
      oid: '1.3.6.1.4.1.42.2.27.2.2.2',
      names: ['inetMailGroup'],
      desc: 'group of mail recipients (Sun Messaging Server)',
      sup: ['top'],
      kind: 'auxiliary',
      may: [
        'inetMailGroupStatus', 'mailDeliveryOption', 'mailEquivalentAddress',
        'mailMsgMaxBlocks', 'mailProgramDeliveryInfo', 'mailSieveRuleSource',
        'mgrpAddHeader', 'mgrpAllowedBroadcaster', 'mgrpAllowedDomain',
        'mgrpBroadcasterPolicy', 'mgrpDeliverTo', 'mgrpErrorsTo', 'mgrpModerator',
        'mgrpMsgMaxSize', 'mgrpMsgRejectAction', 'mgrpMsgRejectText',
        'mgrpNoDuplicateChecks', 'mgrpRemoveHeader', 'mgrpRFC822MailMember',
        'preferredLanguage', 'uniqueMember',
      ],
    },
  ],
};
