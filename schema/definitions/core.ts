/**
 * Core schema: the RFC 4512 system schema (operational attributes, subschema
 * and root-DSE attributes, `top`, `alias`, `extensibleObject`, `subschema`),
 * the RFC 4519 user schema, and a few small standard-track additions that the
 * rest of the schema leans on:
 *
 *   - entryUUID (RFC 4530), entryDN (RFC 5020), hasSubordinates (X.501),
 *     entryCSN and contextCSN (OpenLDAP's, for Content Sync consumers),
 *     vendorName / vendorVersion (RFC 3045);
 *   - subtreeSpecification and the `subentry` class (RFC 3672), so that the
 *     subschema subentry can carry a structural class;
 *   - knowledgeInformation (RFC 2256; not carried into RFC 4519);
 *   - userCertificate and supportedAlgorithms (RFC 4523), referenced by
 *     inetOrgPerson and by nothing else here.
 *
 * Matching rules and syntaxes we do not implement are mapped onto the nearest
 * one we do (see `MatchingRuleName` / `SyntaxName` in ../types):
 *
 *   caseIgnoreListMatch (postalAddress)      -> caseIgnoreMatch
 *   uniqueMemberMatch (uniqueMember)         -> distinguishedNameMatch
 *   bitStringMatch (x500UniqueIdentifier)    -> octetStringMatch
 *   certificateExactMatch (userCertificate)  -> octetStringMatch
 *   objectIdentifierFirstComponentMatch /
 *   integerFirstComponentMatch (subschema)   -> no equality rule
 *   Country String                           -> printableString
 *   Postal Address, Guide, Enhanced Guide,
 *   Delivery Method, Facsimile Telephone
 *   Number, Telex Number, Teletex Terminal
 *   Identifier, the schema description
 *   syntaxes, Subtree Specification          -> directoryString
 *   Bit String, Certificate, Supported
 *   Algorithm                                -> octetString
 *   Name And Optional UID                    -> dn
 *
 * RFC 4519 removed the X.520 upper bounds ({n}); none is given here except
 * where the defining document still states one. Second names (commonName,
 * surname, ...) are the long X.500 names RFC 4519 registers, plus the
 * historical aliases OpenLDAP and 389 also accept (fax, gn, userid,
 * aliasedEntryName).
 */
import type { SchemaModule } from '../types';

export const core: SchemaModule = {
  name: 'core',
  attributeTypes: [
    // ---- RFC 4512 §3.3 / §4.2 / §5.1: system and operational attributes ----
    {
      oid: '2.5.4.0',
      names: ['objectClass'],
      desc: 'RFC4512: object classes of the entity',
      equality: 'objectIdentifierMatch',
      syntax: 'oid',
    },
    {
      oid: '2.5.4.1',
      names: ['aliasedObjectName', 'aliasedEntryName'],
      desc: 'RFC4512: name of aliased object',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
    },
    {
      oid: '2.5.18.1',
      names: ['createTimestamp'],
      desc: 'RFC4512: time which object was created',
      equality: 'generalizedTimeMatch',
      ordering: 'generalizedTimeOrderingMatch',
      syntax: 'generalizedTime',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.18.2',
      names: ['modifyTimestamp'],
      desc: 'RFC4512: time which object was last modified',
      equality: 'generalizedTimeMatch',
      ordering: 'generalizedTimeOrderingMatch',
      syntax: 'generalizedTime',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.18.3',
      names: ['creatorsName'],
      desc: 'RFC4512: name of creator',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.18.4',
      names: ['modifiersName'],
      desc: 'RFC4512: name of last modifier',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.18.6',
      names: ['subtreeSpecification'],
      desc: 'RFC3672: subtree specification',
      syntax: 'directoryString',
      singleValue: true,
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.18.9',
      names: ['hasSubordinates'],
      desc: 'X.501: entry has children',
      equality: 'booleanMatch',
      syntax: 'boolean',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.18.10',
      names: ['subschemaSubentry'],
      desc: 'RFC4512: name of controlling subschema entry',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.21.9',
      names: ['structuralObjectClass'],
      desc: 'RFC4512: structural object class of entry',
      equality: 'objectIdentifierMatch',
      syntax: 'oid',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.21.10',
      names: ['governingStructureRule'],
      desc: 'RFC4512: DIT structure rule governing the entry',
      equality: 'integerMatch',
      syntax: 'integer',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '1.3.6.1.1.16.4',
      names: ['entryUUID'],
      desc: 'RFC4530: UUID of the entry',
      equality: 'uuidMatch',
      ordering: 'uuidOrderingMatch',
      syntax: 'uuid',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    // OpenLDAP's change sequence numbers (server/directory/csn.ts), which a
    // Content Sync consumer (RFC 4533) reads: OpenLDAP's OIDs; its CSN
    // syntax and CSNMatch are served as IA5 strings compared exactly (CSNs
    // of one form sort as strings).
    {
      oid: '1.3.6.1.4.1.4203.666.1.7',
      names: ['entryCSN'],
      desc: 'change sequence number of the entry content',
      equality: 'caseExactIA5Match',
      ordering: 'caseExactOrderingMatch',
      syntax: 'ia5String',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },
    {
      oid: '1.3.6.1.4.1.4203.666.1.25',
      names: ['contextCSN'],
      desc: 'the largest committed CSN of a context',
      equality: 'caseExactIA5Match',
      ordering: 'caseExactOrderingMatch',
      syntax: 'ia5String',
      noUserModification: true,
      usage: 'dSAOperation',
    },
    {
      oid: '1.3.6.1.1.20',
      names: ['entryDN'],
      desc: 'RFC5020: DN of the entry',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
      noUserModification: true,
      usage: 'directoryOperation',
    },

    // ---- RFC 4512 §4.2: subschema attributes ----
    // All use objectIdentifierFirstComponentMatch (integerFirstComponentMatch for
    // dITStructureRules), which we do not implement: no equality rule.
    {
      oid: '2.5.21.1',
      names: ['dITStructureRules'],
      desc: 'RFC4512: DIT structure rules',
      syntax: 'directoryString',
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.21.2',
      names: ['dITContentRules'],
      desc: 'RFC4512: DIT content rules',
      syntax: 'directoryString',
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.21.4',
      names: ['matchingRules'],
      desc: 'RFC4512: matching rules',
      syntax: 'directoryString',
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.21.5',
      names: ['attributeTypes'],
      desc: 'RFC4512: attribute types',
      syntax: 'directoryString',
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.21.6',
      names: ['objectClasses'],
      desc: 'RFC4512: object classes',
      syntax: 'directoryString',
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.21.7',
      names: ['nameForms'],
      desc: 'RFC4512: name forms',
      syntax: 'directoryString',
      usage: 'directoryOperation',
    },
    {
      oid: '2.5.21.8',
      names: ['matchingRuleUse'],
      desc: 'RFC4512: matching rule uses',
      syntax: 'directoryString',
      usage: 'directoryOperation',
    },
    {
      oid: '1.3.6.1.4.1.1466.101.120.16',
      names: ['ldapSyntaxes'],
      desc: 'RFC4512: LDAP syntaxes',
      syntax: 'directoryString',
      usage: 'directoryOperation',
    },

    // ---- RFC 4512 §5.1: root DSE attributes (no EQUALITY given by the RFC,
    // except supportedFeatures) ----
    {
      oid: '1.3.6.1.4.1.1466.101.120.6',
      names: ['altServer'],
      desc: 'RFC4512: alternative servers',
      syntax: 'ia5String',
      usage: 'dSAOperation',
    },
    {
      oid: '1.3.6.1.4.1.1466.101.120.5',
      names: ['namingContexts'],
      desc: 'RFC4512: naming contexts',
      syntax: 'dn',
      usage: 'dSAOperation',
    },
    {
      oid: '1.3.6.1.4.1.1466.101.120.13',
      names: ['supportedControl'],
      desc: 'RFC4512: supported controls',
      syntax: 'oid',
      usage: 'dSAOperation',
    },
    {
      oid: '1.3.6.1.4.1.1466.101.120.7',
      names: ['supportedExtension'],
      desc: 'RFC4512: supported extended operations',
      syntax: 'oid',
      usage: 'dSAOperation',
    },
    {
      oid: '1.3.6.1.4.1.4203.1.3.5',
      names: ['supportedFeatures'],
      desc: 'RFC4512: features supported by the server',
      equality: 'objectIdentifierMatch',
      syntax: 'oid',
      usage: 'dSAOperation',
    },
    {
      oid: '1.3.6.1.4.1.1466.101.120.15',
      names: ['supportedLDAPVersion'],
      desc: 'RFC4512: supported LDAP versions',
      syntax: 'integer',
      usage: 'dSAOperation',
    },
    {
      oid: '1.3.6.1.4.1.1466.101.120.14',
      names: ['supportedSASLMechanisms'],
      desc: 'RFC4512: supported SASL mechanisms',
      syntax: 'directoryString',
      usage: 'dSAOperation',
    },
    // RFC 3045 writes EQUALITY caseExactIA5Match with SYNTAX Directory String;
    // we keep the Directory String syntax and use caseExactMatch (as OpenLDAP does).
    {
      oid: '1.3.6.1.1.4',
      names: ['vendorName'],
      desc: 'RFC3045: name of implementation vendor',
      equality: 'caseExactMatch',
      syntax: 'directoryString',
      singleValue: true,
      noUserModification: true,
      usage: 'dSAOperation',
    },
    {
      oid: '1.3.6.1.1.5',
      names: ['vendorVersion'],
      desc: 'RFC3045: version of implementation',
      equality: 'caseExactMatch',
      syntax: 'directoryString',
      singleValue: true,
      noUserModification: true,
      usage: 'dSAOperation',
    },

    // ---- RFC 4519 §2: user attributes ----
    {
      oid: '2.5.4.41',
      names: ['name'],
      desc: 'RFC4519: common supertype of name attributes',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.5.4.49',
      names: ['distinguishedName'],
      desc: 'RFC4519: common supertype of DN attributes',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
    },
    {
      oid: '2.5.4.3',
      names: ['cn', 'commonName'],
      desc: 'RFC4519: common name(s) for which the entity is known by',
      sup: 'name',
    },
    {
      oid: '2.5.4.4',
      names: ['sn', 'surname'],
      desc: 'RFC4519: last (family) name(s) for which the entity is known by',
      sup: 'name',
    },
    {
      oid: '2.5.4.5',
      names: ['serialNumber'],
      desc: 'RFC4519: serial number of the entity',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'printableString',
    },
    {
      oid: '2.5.4.6',
      names: ['c', 'countryName'],
      desc: 'RFC4519: two-letter ISO-3166 country code',
      sup: 'name',
      syntax: 'printableString', // Country String
      singleValue: true,
    },
    {
      oid: '2.5.4.7',
      names: ['l', 'localityName'],
      desc: 'RFC4519: locality which this object resides in',
      sup: 'name',
    },
    {
      oid: '2.5.4.8',
      names: ['st', 'stateOrProvinceName'],
      desc: 'RFC4519: state or province which this object resides in',
      sup: 'name',
    },
    {
      oid: '2.5.4.9',
      names: ['street', 'streetAddress'],
      desc: 'RFC4519: street address of this object',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.5.4.10',
      names: ['o', 'organizationName'],
      desc: 'RFC4519: organization this object belongs to',
      sup: 'name',
    },
    {
      oid: '2.5.4.11',
      names: ['ou', 'organizationalUnitName'],
      desc: 'RFC4519: organizational unit this object belongs to',
      sup: 'name',
    },
    {
      oid: '2.5.4.12',
      names: ['title'],
      desc: 'RFC4519: title associated with the entity',
      sup: 'name',
    },
    {
      oid: '2.5.4.13',
      names: ['description'],
      desc: 'RFC4519: descriptive information',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.5.4.14',
      names: ['searchGuide'],
      desc: 'RFC4519: search guide, deprecated by enhancedSearchGuide',
      syntax: 'directoryString', // Guide
    },
    {
      oid: '2.5.4.15',
      names: ['businessCategory'],
      desc: 'RFC4519: business category',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.5.4.16',
      names: ['postalAddress'],
      desc: 'RFC4519: postal address',
      equality: 'caseIgnoreMatch', // caseIgnoreListMatch
      substr: 'caseIgnoreListSubstringsMatch',
      syntax: 'directoryString', // Postal Address
    },
    {
      oid: '2.5.4.17',
      names: ['postalCode'],
      desc: 'RFC4519: postal code',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.5.4.18',
      names: ['postOfficeBox'],
      desc: 'RFC4519: Post Office Box',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.5.4.19',
      names: ['physicalDeliveryOfficeName'],
      desc: 'RFC4519: Physical Delivery Office Name',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.5.4.20',
      names: ['telephoneNumber'],
      desc: 'RFC4519: Telephone Number',
      equality: 'telephoneNumberMatch',
      substr: 'telephoneNumberSubstringsMatch',
      syntax: 'telephoneNumber',
    },
    {
      oid: '2.5.4.21',
      names: ['telexNumber'],
      desc: 'RFC4519: Telex Number',
      syntax: 'directoryString', // Telex Number
    },
    {
      oid: '2.5.4.22',
      names: ['teletexTerminalIdentifier'],
      desc: 'RFC4519: Teletex Terminal Identifier (withdrawn)',
      syntax: 'directoryString', // Teletex Terminal Identifier
    },
    {
      oid: '2.5.4.23',
      names: ['facsimileTelephoneNumber', 'fax'],
      desc: 'RFC4519: Facsimile (Fax) Telephone Number',
      syntax: 'directoryString', // Facsimile Telephone Number
    },
    {
      oid: '2.5.4.24',
      names: ['x121Address'],
      desc: 'RFC4519: X.121 Address',
      equality: 'numericStringMatch',
      substr: 'numericStringSubstringsMatch',
      syntax: 'numericString',
    },
    {
      oid: '2.5.4.25',
      names: ['internationalISDNNumber'],
      desc: 'RFC4519: international ISDN number',
      equality: 'numericStringMatch',
      substr: 'numericStringSubstringsMatch',
      syntax: 'numericString',
    },
    {
      oid: '2.5.4.26',
      names: ['registeredAddress'],
      desc: 'RFC4519: registered postal address',
      sup: 'postalAddress',
      syntax: 'directoryString', // Postal Address
    },
    {
      oid: '2.5.4.27',
      names: ['destinationIndicator'],
      desc: 'RFC4519: destination indicator',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'printableString',
    },
    {
      oid: '2.5.4.28',
      names: ['preferredDeliveryMethod'],
      desc: 'RFC4519: preferred delivery method',
      syntax: 'directoryString', // Delivery Method
      singleValue: true,
    },
    {
      oid: '2.5.4.31',
      names: ['member'],
      desc: 'RFC4519: member of a group',
      sup: 'distinguishedName',
    },
    {
      oid: '2.5.4.32',
      names: ['owner'],
      desc: 'RFC4519: owner (of the object)',
      sup: 'distinguishedName',
    },
    {
      oid: '2.5.4.33',
      names: ['roleOccupant'],
      desc: 'RFC4519: occupant of role',
      sup: 'distinguishedName',
    },
    {
      oid: '2.5.4.34',
      names: ['seeAlso'],
      desc: 'RFC4519: DN of related object',
      sup: 'distinguishedName',
    },
    {
      oid: '2.5.4.35',
      names: ['userPassword'],
      desc: 'RFC4519: password of user',
      equality: 'octetStringMatch',
      syntax: 'octetString',
    },
    {
      oid: '2.5.4.42',
      names: ['givenName', 'gn'],
      desc: 'RFC4519: first name(s) for which the entity is known by',
      sup: 'name',
    },
    {
      oid: '2.5.4.43',
      names: ['initials'],
      desc: 'RFC4519: initials of some or all of names, but not the surname(s)',
      sup: 'name',
    },
    {
      oid: '2.5.4.44',
      names: ['generationQualifier'],
      desc: 'RFC4519: name qualifier indicating a generation',
      sup: 'name',
    },
    {
      oid: '2.5.4.45',
      names: ['x500UniqueIdentifier'],
      desc: 'RFC4519: X.500 unique identifier',
      equality: 'octetStringMatch', // bitStringMatch
      syntax: 'octetString', // Bit String
    },
    {
      oid: '2.5.4.46',
      names: ['dnQualifier'],
      desc: 'RFC4519: DN qualifier',
      equality: 'caseIgnoreMatch',
      ordering: 'caseIgnoreOrderingMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'printableString',
    },
    {
      oid: '2.5.4.47',
      names: ['enhancedSearchGuide'],
      desc: 'RFC4519: enhanced search guide',
      syntax: 'directoryString', // Enhanced Guide
    },
    {
      oid: '2.5.4.50',
      names: ['uniqueMember'],
      desc: 'RFC4519: unique member of a group',
      equality: 'distinguishedNameMatch', // uniqueMemberMatch
      syntax: 'dn', // Name And Optional UID
    },
    {
      oid: '2.5.4.51',
      names: ['houseIdentifier'],
      desc: 'RFC4519: house identifier',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '0.9.2342.19200300.100.1.25',
      names: ['dc', 'domainComponent'],
      desc: 'RFC4519: domain component',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
      singleValue: true,
    },
    {
      oid: '0.9.2342.19200300.100.1.1',
      names: ['uid', 'userid'],
      desc: 'RFC4519: user identifier',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },

    // ---- RFC 2256 / RFC 4523: referenced by classes in this schema ----
    {
      oid: '2.5.4.2',
      names: ['knowledgeInformation'],
      desc: 'RFC2256: knowledge information',
      equality: 'caseIgnoreMatch',
      syntax: 'directoryString',
      syntaxLen: 32768,
    },
    {
      oid: '2.5.4.36',
      names: ['userCertificate'],
      desc: 'RFC4523: X.509 user certificate',
      equality: 'octetStringMatch', // certificateExactMatch
      syntax: 'octetString', // Certificate
    },
    {
      oid: '2.5.4.52',
      names: ['supportedAlgorithms'],
      desc: 'RFC4523: supported algorithms',
      syntax: 'octetString', // Supported Algorithm
    },
  ],

  objectClasses: [
    // ---- RFC 4512 ----
    {
      oid: '2.5.6.0',
      names: ['top'],
      desc: 'RFC4512: top of the superclass chain',
      kind: 'abstract',
      must: ['objectClass'],
    },
    {
      oid: '2.5.6.1',
      names: ['alias'],
      desc: 'RFC4512: an alias',
      sup: ['top'],
      kind: 'structural',
      must: ['aliasedObjectName'],
    },
    {
      oid: '1.3.6.1.4.1.1466.101.120.111',
      names: ['extensibleObject'],
      desc: 'RFC4512: extensible object (any user attribute allowed)',
      sup: ['top'],
      kind: 'auxiliary',
    },
    {
      // RFC 4512 §4.2 lists neither SUP nor ldapSyntaxes; §4.2.5 has servers
      // publish ldapSyntaxes in the subschema subentry, so we allow it here.
      oid: '2.5.20.1',
      names: ['subschema'],
      desc: 'RFC4512: controlling subschema (sub)entry',
      sup: ['top'],
      kind: 'auxiliary',
      may: [
        'dITStructureRules',
        'nameForms',
        'dITContentRules',
        'objectClasses',
        'attributeTypes',
        'matchingRules',
        'matchingRuleUse',
        'ldapSyntaxes',
      ],
    },
    {
      oid: '2.5.17.0',
      names: ['subentry'],
      desc: 'RFC3672: subentry',
      sup: ['top'],
      kind: 'structural',
      must: ['cn', 'subtreeSpecification'],
    },

    // ---- RFC 4519 §3 ----
    {
      oid: '2.5.6.11',
      names: ['applicationProcess'],
      desc: 'RFC4519: an application process',
      sup: ['top'],
      kind: 'structural',
      must: ['cn'],
      may: ['seeAlso', 'ou', 'l', 'description'],
    },
    {
      oid: '2.5.6.2',
      names: ['country'],
      desc: 'RFC4519: a country',
      sup: ['top'],
      kind: 'structural',
      must: ['c'],
      may: ['searchGuide', 'description'],
    },
    {
      oid: '1.3.6.1.4.1.1466.344',
      names: ['dcObject'],
      desc: 'RFC4519: domain component object',
      sup: ['top'],
      kind: 'auxiliary',
      must: ['dc'],
    },
    {
      oid: '2.5.6.14',
      names: ['device'],
      desc: 'RFC4519: a device',
      sup: ['top'],
      kind: 'structural',
      must: ['cn'],
      may: ['serialNumber', 'seeAlso', 'owner', 'ou', 'o', 'l', 'description'],
    },
    {
      oid: '2.5.6.9',
      names: ['groupOfNames'],
      desc: 'RFC4519: a group of names (DNs)',
      sup: ['top'],
      kind: 'structural',
      must: ['member', 'cn'],
      may: ['businessCategory', 'seeAlso', 'owner', 'ou', 'o', 'description'],
    },
    {
      oid: '2.5.6.17',
      names: ['groupOfUniqueNames'],
      desc: 'RFC4519: a group of unique names (DN and Unique Identifier)',
      sup: ['top'],
      kind: 'structural',
      must: ['uniqueMember', 'cn'],
      may: ['businessCategory', 'seeAlso', 'owner', 'ou', 'o', 'description'],
    },
    {
      oid: '2.5.6.3',
      names: ['locality'],
      desc: 'RFC4519: a locality',
      sup: ['top'],
      kind: 'structural',
      may: ['street', 'seeAlso', 'searchGuide', 'st', 'l', 'description'],
    },
    {
      oid: '2.5.6.4',
      names: ['organization'],
      desc: 'RFC4519: an organization',
      sup: ['top'],
      kind: 'structural',
      must: ['o'],
      may: [
        'userPassword', 'searchGuide', 'seeAlso', 'businessCategory',
        'x121Address', 'registeredAddress', 'destinationIndicator',
        'preferredDeliveryMethod', 'telexNumber', 'teletexTerminalIdentifier',
        'telephoneNumber', 'internationalISDNNumber', 'facsimileTelephoneNumber',
        'street', 'postOfficeBox', 'postalCode', 'postalAddress',
        'physicalDeliveryOfficeName', 'st', 'l', 'description',
      ],
    },
    {
      oid: '2.5.6.7',
      names: ['organizationalPerson'],
      desc: 'RFC4519: an organizational person',
      sup: ['person'],
      kind: 'structural',
      may: [
        'title', 'x121Address', 'registeredAddress', 'destinationIndicator',
        'preferredDeliveryMethod', 'telexNumber', 'teletexTerminalIdentifier',
        'telephoneNumber', 'internationalISDNNumber', 'facsimileTelephoneNumber',
        'street', 'postOfficeBox', 'postalCode', 'postalAddress',
        'physicalDeliveryOfficeName', 'ou', 'st', 'l',
      ],
    },
    {
      oid: '2.5.6.8',
      names: ['organizationalRole'],
      desc: 'RFC4519: an organizational role',
      sup: ['top'],
      kind: 'structural',
      must: ['cn'],
      // RFC 4519 lists preferredDeliveryMethod twice; once is enough.
      may: [
        'x121Address', 'registeredAddress', 'destinationIndicator',
        'preferredDeliveryMethod', 'telexNumber', 'teletexTerminalIdentifier',
        'telephoneNumber', 'internationalISDNNumber', 'facsimileTelephoneNumber',
        'seeAlso', 'roleOccupant', 'street', 'postOfficeBox', 'postalCode',
        'postalAddress', 'physicalDeliveryOfficeName', 'ou', 'st', 'l', 'description',
      ],
    },
    {
      oid: '2.5.6.5',
      names: ['organizationalUnit'],
      desc: 'RFC4519: an organizational unit',
      sup: ['top'],
      kind: 'structural',
      must: ['ou'],
      may: [
        'businessCategory', 'description', 'destinationIndicator',
        'facsimileTelephoneNumber', 'internationalISDNNumber', 'l',
        'physicalDeliveryOfficeName', 'postalAddress', 'postalCode',
        'postOfficeBox', 'preferredDeliveryMethod', 'registeredAddress',
        'searchGuide', 'seeAlso', 'st', 'street', 'telephoneNumber',
        'teletexTerminalIdentifier', 'telexNumber', 'userPassword', 'x121Address',
      ],
    },
    {
      oid: '2.5.6.6',
      names: ['person'],
      desc: 'RFC4519: a person',
      sup: ['top'],
      kind: 'structural',
      must: ['sn', 'cn'],
      may: ['userPassword', 'telephoneNumber', 'seeAlso', 'description'],
    },
    {
      oid: '2.5.6.10',
      names: ['residentialPerson'],
      desc: 'RFC4519: a residential person',
      sup: ['person'],
      kind: 'structural',
      must: ['l'],
      // RFC 4519 lists preferredDeliveryMethod twice; once is enough.
      may: [
        'businessCategory', 'x121Address', 'registeredAddress',
        'destinationIndicator', 'preferredDeliveryMethod', 'telexNumber',
        'teletexTerminalIdentifier', 'telephoneNumber', 'internationalISDNNumber',
        'facsimileTelephoneNumber', 'street', 'postOfficeBox', 'postalCode',
        'postalAddress', 'physicalDeliveryOfficeName', 'st', 'l',
      ],
    },
    {
      oid: '1.3.6.1.1.3.1',
      names: ['uidObject'],
      desc: 'RFC4519: uid object',
      sup: ['top'],
      kind: 'auxiliary',
      must: ['uid'],
    },
  ],
};
