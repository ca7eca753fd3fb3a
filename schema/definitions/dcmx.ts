/**
 * dcmx's own arc.
 *
 * dcmx uses 1.3.6.1.4.1.32473.1 until it has its own IANA Private Enterprise
 * Number. (PEN 32473 is the one IANA reserves for examples and documentation,
 * RFC 5612; it is assigned to no one, so nothing we define can clash with a
 * real vendor's schema. When dcmx gets its own PEN, renumber this arc; names
 * stay the same, and stored entries use names, not OIDs.)
 *
 *   1.3.6.1.4.1.32473.1.1.x   attribute types
 *   1.3.6.1.4.1.32473.1.2.x   object classes
 *   1.3.6.1.4.1.32473.1.3.x   extended operations and controls
 *
 * What lives here is only what has no public OID we could verify: attribute
 * types whose name is public (Netscape / iPlanet / Sun Messaging Server, 389
 * DS changelog) but whose OID is documented as "Unknown" or is not published
 * at all. Each keeps its public name so that software written for the
 * original schema finds it.
 *
 * Allocations:
 *   .1.1.1   firstChangeNumber            (389 DS root DSE; no Netscape-arc OID published)
 *   .1.1.2   lastChangeNumber             (likewise)
 *   .1.1.3   mailDomainStatus             (Sun Messaging Server; OID not found)
 *   .1.1.4   mailDomainCatchallAddress    (Sun docs: OID "Unknown")
 *   .1.1.5   mailDomainAllowedServiceAccess (OID not found)
 *   .1.1.6   mailDomainMsgMaxBlocks       (Sun docs: OID "Unknown")
 *   .1.1.7   mailDomainReportAddress      (OID not found)
 *   .1.1.8   mailEquivalentAddress        (Sun docs: OID "Unknown")
 *   .1.1.9   mailMsgMaxBlocks             (Sun docs: OID "Unknown")
 *   .1.1.10  mailAllowedServiceAccess     (OID not found)
 *   .1.1.11  dkimPrivateKey               (dcmx: a DKIM signing key, RFC 6376)
 *   .1.1.12  dnssecPrivateKey             (dcmx: a zone's DNSSEC signing key, RFC 6605)
 *   .1.1.13  dnssecWithdrawal             (dcmx: when a zone's DNSSEC withdrawal began, RFC 8078 §4)
 *   .1.2.1   mailDomain (object class)    (Sun Messaging Server; OID not found;
 *                                          defined in iplanet.ts next to its
 *                                          attributes)
 *   .1.2.2   mailRoutingObject (object class) (iPlanet; OID not found; in iplanet.ts)
 *   .1.2.3   dkimKey (object class)       (dcmx: holds dkimPrivateKey on a
 *                                          `<selector>._domainkey` entry)
 *   .1.2.4   dnssecZone (object class)    (dcmx: a signed zone's apex, holding
 *                                          its keys; server/directory/dnssec-keys.ts)
 *   .1.3.x   none yet
 */
import type { SchemaModule } from '../types';

/** Root of dcmx's arc; see the file header. */
export const DCMX_ARC = '1.3.6.1.4.1.32473.1';
/** Attribute types: `${DCMX_AT}.n`. */
export const DCMX_AT = `${DCMX_ARC}.1`;
/** Object classes: `${DCMX_OC}.n`. */
export const DCMX_OC = `${DCMX_ARC}.2`;
/** Extended operations and controls: `${DCMX_EXT}.n`. */
export const DCMX_EXT = `${DCMX_ARC}.3`;
/** dcmx's domain provisioning extended operation (request value: the domain name, UTF-8); served by server/ldap/extended.ts, called by remote transfer units. */
export const PROVISION_DOMAIN_OID = `${DCMX_EXT}.1`;

export const dcmx: SchemaModule = {
  name: 'dcmx',
  attributeTypes: [
    {
      oid: `${DCMX_AT}.1`,
      names: ['firstChangeNumber'],
      desc: 'first change number in the changelog (389 DS name)',
      equality: 'integerMatch',
      ordering: 'integerOrderingMatch',
      syntax: 'integer',
      singleValue: true,
      noUserModification: true,
      usage: 'dSAOperation',
    },
    {
      oid: `${DCMX_AT}.2`,
      names: ['lastChangeNumber'],
      desc: 'last change number in the changelog (389 DS name)',
      equality: 'integerMatch',
      ordering: 'integerOrderingMatch',
      syntax: 'integer',
      singleValue: true,
      noUserModification: true,
      usage: 'dSAOperation',
    },
    {
      oid: `${DCMX_AT}.3`,
      names: ['mailDomainStatus'],
      desc: 'mail service status of the domain: active, inactive, disabled, deleted, hold, overquota (Sun Messaging Server name)',
      equality: 'caseIgnoreMatch',
      syntax: 'directoryString',
      singleValue: true,
    },
    {
      oid: `${DCMX_AT}.4`,
      names: ['mailDomainCatchallAddress'],
      desc: 'address substituted for any address in the domain that matches no user or group (Sun Messaging Server name)',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
      singleValue: true,
    },
    {
      oid: `${DCMX_AT}.5`,
      names: ['mailDomainAllowedServiceAccess'],
      desc: 'service access filter for all users of the domain (Sun Messaging Server name)',
      equality: 'caseIgnoreMatch',
      syntax: 'directoryString',
      singleValue: true,
    },
    {
      oid: `${DCMX_AT}.6`,
      names: ['mailDomainMsgMaxBlocks'],
      desc: 'size limit, in MTA blocks, on messages sent to addresses in the domain (Sun Messaging Server name)',
      equality: 'integerMatch',
      ordering: 'integerOrderingMatch',
      syntax: 'integer',
      singleValue: true,
    },
    {
      oid: `${DCMX_AT}.7`,
      names: ['mailDomainReportAddress'],
      desc: 'address that receives reports (e.g. bounce or abuse reports) for the domain (Sun Messaging Server name)',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
    },
    {
      oid: `${DCMX_AT}.8`,
      names: ['mailEquivalentAddress'],
      desc: 'address routed like mailAlternateAddress but without header rewriting (Sun Messaging Server name)',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
    },
    {
      oid: `${DCMX_AT}.9`,
      names: ['mailMsgMaxBlocks'],
      desc: 'size limit, in MTA blocks, on messages sent to this user or group (Sun Messaging Server name)',
      equality: 'integerMatch',
      ordering: 'integerOrderingMatch',
      syntax: 'integer',
      singleValue: true,
    },
    {
      oid: `${DCMX_AT}.10`,
      names: ['mailAllowedServiceAccess'],
      desc: 'service access filter for this user (Sun Messaging Server name)',
      equality: 'caseIgnoreMatch',
      syntax: 'directoryString',
      singleValue: true,
    },
    {
      oid: `${DCMX_AT}.11`,
      names: ['dkimPrivateKey'],
      desc: 'DKIM signing key of the selector this entry publishes (PKCS#8 PEM); readable by the administrator only (server/directory/access.ts)',
      equality: 'caseExactIA5Match',
      syntax: 'ia5String',
      singleValue: true,
    },
    {
      oid: `${DCMX_AT}.12`,
      names: ['dnssecPrivateKey'],
      desc: 'DNSSEC signing key of the zone whose apex this is (ECDSA P-256, PKCS#8 PEM); readable by the administrator and replicators only',
      equality: 'caseExactIA5Match',
      syntax: 'ia5String',
    },
    {
      oid: `${DCMX_AT}.13`,
      names: ['dnssecWithdrawal'],
      desc: 'when the withdrawal of the DNSSEC signing of this zone began (RFC 8078 section 4 delete CDS published); the key goes after a grace period',
      equality: 'generalizedTimeMatch',
      ordering: 'generalizedTimeOrderingMatch',
      syntax: 'generalizedTime',
      singleValue: true,
    },
  ],
  objectClasses: [
    {
      oid: `${DCMX_OC}.3`,
      names: ['dkimKey'],
      desc: 'a DKIM selector entry, selector._domainkey.domain, that holds its private key (RFC 6376 section 3.6.2.1)',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['dkimPrivateKey'],
    },
    {
      oid: `${DCMX_OC}.4`,
      names: ['dnssecZone'],
      desc: 'the apex of a zone signed here: its DNSSEC keys and signing state (server/directory/dnssec-keys.ts)',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['dnssecPrivateKey', 'dnssecWithdrawal'],
    },
  ],
};
