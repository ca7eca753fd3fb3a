/**
 * COSINE schema: RFC 4524, plus the RFC 1274 elements RFC 4524 did not carry
 * forward but that are still in everyday use (pilotPerson and its attributes,
 * audio/photo for inetOrgPerson, and the dNSDomain class with its DNS record
 * attributes, which dnsdomain2 builds on). Definitions follow RFC 4524 where
 * it has them and OpenLDAP's cosine.schema (the RFC 1274 mapping) otherwise.
 *
 * Not here, though RFC 4524 leans on them: uid and dc (RFC 4519, in core) and
 * jpegPhoto (RFC 2798, in inetorgperson). Deliberately left out as historic
 * and unreferenced: pilotObject, pilotOrganization, pilotDSA,
 * qualityLabelledData, dSAQuality & co., lastModifiedTime/By, dITRedirect.
 *
 * Oddities in the sources, resolved here:
 *  - RFC 4524 spells 'internationaliSDNNumber' and 'telephonenumber' in class
 *    lists; names match case-insensitively, so the canonical spellings of
 *    RFC 4519 are used instead.
 *  - RFC 4524 names the class 'rFC822localPart' (OpenLDAP: 'RFC822localPart');
 *    RFC 4524's spelling is canonical.
 *  - RFC 4524 gives 'co' only; 'friendlyCountryName' (RFC 1274) is kept as a
 *    second name, likewise 'favouriteDrink', 'homeTelephoneNumber',
 *    'mobileTelephoneNumber', 'pagerTelephoneNumber' and 'rfc822Mailbox'.
 *  - The RFC 1274 DNS record attributes (aRecord ... cNAMERecord) have no
 *    SUBSTR rule in the public definitions; none is added.
 *
 * caseIgnoreListMatch (homePostalAddress) maps to caseIgnoreMatch; Audio,
 * Fax (photo, personalSignature) map to octetString; Other Mailbox maps to
 * directoryString.
 */
import type { SchemaModule } from '../types';

export const cosine: SchemaModule = {
  name: 'cosine',
  attributeTypes: [
    // ---- RFC 4524 §2 ----
    {
      oid: '0.9.2342.19200300.100.1.37',
      names: ['associatedDomain'],
      desc: 'RFC4524: DNS domain associated with the object',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
    },
    {
      oid: '0.9.2342.19200300.100.1.38',
      names: ['associatedName'],
      desc: 'RFC4524: DN of entry associated with a DNS domain',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
    },
    {
      oid: '0.9.2342.19200300.100.1.48',
      names: ['buildingName'],
      desc: 'RFC4524: name of building',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.43',
      names: ['co', 'friendlyCountryName'],
      desc: 'RFC4524: friendly country name',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '0.9.2342.19200300.100.1.14',
      names: ['documentAuthor'],
      desc: 'RFC4524: DN of author of document',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
    },
    {
      oid: '0.9.2342.19200300.100.1.11',
      names: ['documentIdentifier'],
      desc: 'RFC4524: unique identifier of document',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.15',
      names: ['documentLocation'],
      desc: 'RFC4524: location of document original',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.56',
      names: ['documentPublisher'],
      desc: 'RFC4524: publisher of document',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '0.9.2342.19200300.100.1.12',
      names: ['documentTitle'],
      desc: 'RFC4524: title of document',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.13',
      names: ['documentVersion'],
      desc: 'RFC4524: version of document',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.5',
      names: ['drink', 'favouriteDrink'],
      desc: 'RFC4524: favorite drink',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.20',
      names: ['homePhone', 'homeTelephoneNumber'],
      desc: 'RFC4524: home telephone number',
      equality: 'telephoneNumberMatch',
      substr: 'telephoneNumberSubstringsMatch',
      syntax: 'telephoneNumber',
    },
    {
      oid: '0.9.2342.19200300.100.1.39',
      names: ['homePostalAddress'],
      desc: 'RFC4524: home postal address',
      equality: 'caseIgnoreMatch', // caseIgnoreListMatch
      substr: 'caseIgnoreListSubstringsMatch',
      syntax: 'directoryString', // Postal Address
    },
    {
      oid: '0.9.2342.19200300.100.1.9',
      names: ['host'],
      desc: 'RFC4524: host computer',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.4',
      names: ['info'],
      desc: 'RFC4524: general information',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 2048,
    },
    {
      oid: '0.9.2342.19200300.100.1.3',
      names: ['mail', 'rfc822Mailbox'],
      desc: 'RFC4524: RFC 822 mailbox',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.10',
      names: ['manager'],
      desc: 'RFC4524: DN of manager',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
    },
    {
      oid: '0.9.2342.19200300.100.1.41',
      names: ['mobile', 'mobileTelephoneNumber'],
      desc: 'RFC4524: mobile telephone number',
      equality: 'telephoneNumberMatch',
      substr: 'telephoneNumberSubstringsMatch',
      syntax: 'telephoneNumber',
    },
    {
      oid: '0.9.2342.19200300.100.1.45',
      names: ['organizationalStatus'],
      desc: 'RFC4524: organizational status',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.42',
      names: ['pager', 'pagerTelephoneNumber'],
      desc: 'RFC4524: pager telephone number',
      equality: 'telephoneNumberMatch',
      substr: 'telephoneNumberSubstringsMatch',
      syntax: 'telephoneNumber',
    },
    {
      oid: '0.9.2342.19200300.100.1.40',
      names: ['personalTitle'],
      desc: 'RFC4524: personal title',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.6',
      names: ['roomNumber'],
      desc: 'RFC4524: room number',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.21',
      names: ['secretary'],
      desc: 'RFC4524: DN of secretary',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
    },
    {
      oid: '0.9.2342.19200300.100.1.44',
      names: ['uniqueIdentifier'],
      desc: 'RFC4524: unique identifier',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.8',
      names: ['userClass'],
      desc: 'RFC4524: category of user',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },

    // ---- RFC 1274 only (historic; kept for pilotPerson, inetOrgPerson, dNSDomain) ----
    {
      oid: '0.9.2342.19200300.100.1.2',
      names: ['textEncodedORAddress'],
      desc: 'RFC1274: text encoded O/R address',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.7',
      names: ['photo'],
      desc: 'RFC1274: photo (G3 fax)',
      syntax: 'octetString', // Fax
      syntaxLen: 25000,
    },
    {
      oid: '0.9.2342.19200300.100.1.22',
      names: ['otherMailbox'],
      desc: 'RFC1274: other mailbox',
      syntax: 'directoryString', // Other Mailbox
    },
    {
      oid: '0.9.2342.19200300.100.1.26',
      names: ['aRecord'],
      desc: 'RFC1274: DNS A record',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
    },
    {
      oid: '0.9.2342.19200300.100.1.27',
      names: ['mDRecord'],
      desc: 'RFC1274: DNS MD record',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
    },
    {
      oid: '0.9.2342.19200300.100.1.28',
      names: ['mXRecord'],
      desc: 'RFC1274: DNS MX record',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
    },
    {
      oid: '0.9.2342.19200300.100.1.29',
      names: ['nSRecord'],
      desc: 'RFC1274: DNS NS record',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
    },
    {
      oid: '0.9.2342.19200300.100.1.30',
      names: ['sOARecord'],
      desc: 'RFC1274: DNS SOA record',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
    },
    {
      oid: '0.9.2342.19200300.100.1.31',
      names: ['cNAMERecord'],
      desc: 'RFC1274: DNS CNAME record',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
    },
    {
      oid: '0.9.2342.19200300.100.1.46',
      names: ['janetMailbox'],
      desc: 'RFC1274: Janet mailbox',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
      syntaxLen: 256,
    },
    {
      oid: '0.9.2342.19200300.100.1.47',
      names: ['mailPreferenceOption'],
      desc: 'RFC1274: mail preference option',
      syntax: 'integer',
    },
    {
      oid: '0.9.2342.19200300.100.1.53',
      names: ['personalSignature'],
      desc: 'RFC1274: personal signature (G3 fax)',
      syntax: 'octetString', // Fax
    },
    {
      oid: '0.9.2342.19200300.100.1.55',
      names: ['audio'],
      desc: 'RFC1274: audio (u-law)',
      syntax: 'octetString', // Audio
      syntaxLen: 25000,
    },
  ],

  objectClasses: [
    // ---- RFC 4524 §3 ----
    {
      oid: '0.9.2342.19200300.100.4.5',
      names: ['account'],
      desc: 'RFC4524: computer account',
      sup: ['top'],
      kind: 'structural',
      must: ['uid'],
      may: ['description', 'seeAlso', 'l', 'o', 'ou', 'host'],
    },
    {
      oid: '0.9.2342.19200300.100.4.6',
      names: ['document'],
      desc: 'RFC4524: document',
      sup: ['top'],
      kind: 'structural',
      must: ['documentIdentifier'],
      may: [
        'cn', 'description', 'seeAlso', 'l', 'o', 'ou', 'documentTitle',
        'documentVersion', 'documentAuthor', 'documentLocation', 'documentPublisher',
      ],
    },
    {
      oid: '0.9.2342.19200300.100.4.9',
      names: ['documentSeries'],
      desc: 'RFC4524: series of documents',
      sup: ['top'],
      kind: 'structural',
      must: ['cn'],
      may: ['description', 'l', 'o', 'ou', 'seeAlso', 'telephoneNumber'],
    },
    {
      oid: '0.9.2342.19200300.100.4.13',
      names: ['domain'],
      desc: 'RFC4524: DNS domain',
      sup: ['top'],
      kind: 'structural',
      must: ['dc'],
      may: [
        'userPassword', 'searchGuide', 'seeAlso', 'businessCategory',
        'x121Address', 'registeredAddress', 'destinationIndicator',
        'preferredDeliveryMethod', 'telexNumber', 'teletexTerminalIdentifier',
        'telephoneNumber', 'internationalISDNNumber', 'facsimileTelephoneNumber',
        'street', 'postOfficeBox', 'postalCode', 'postalAddress',
        'physicalDeliveryOfficeName', 'st', 'l', 'description', 'o',
        'associatedName',
      ],
    },
    {
      oid: '0.9.2342.19200300.100.4.17',
      names: ['domainRelatedObject'],
      desc: 'RFC4524: object related to a DNS domain',
      sup: ['top'],
      kind: 'auxiliary',
      must: ['associatedDomain'],
    },
    {
      oid: '0.9.2342.19200300.100.4.18',
      names: ['friendlyCountry'],
      desc: 'RFC4524: country with a friendly name',
      sup: ['country'],
      kind: 'structural',
      must: ['co'],
    },
    {
      oid: '0.9.2342.19200300.100.4.14',
      names: ['rFC822localPart'],
      desc: 'RFC4524: local part of an Internet mail address',
      sup: ['domain'],
      kind: 'structural',
      may: [
        'cn', 'description', 'destinationIndicator', 'facsimileTelephoneNumber',
        'internationalISDNNumber', 'physicalDeliveryOfficeName', 'postalAddress',
        'postalCode', 'postOfficeBox', 'preferredDeliveryMethod',
        'registeredAddress', 'seeAlso', 'sn', 'street', 'telephoneNumber',
        'teletexTerminalIdentifier', 'telexNumber', 'x121Address',
      ],
    },
    {
      oid: '0.9.2342.19200300.100.4.7',
      names: ['room'],
      desc: 'RFC4524: room',
      sup: ['top'],
      kind: 'structural',
      must: ['cn'],
      may: ['roomNumber', 'description', 'seeAlso', 'telephoneNumber'],
    },
    {
      oid: '0.9.2342.19200300.100.4.19',
      names: ['simpleSecurityObject'],
      desc: 'RFC4524: simple security object',
      sup: ['top'],
      kind: 'auxiliary',
      must: ['userPassword'],
    },

    // ---- RFC 1274 only ----
    {
      oid: '0.9.2342.19200300.100.4.4',
      names: ['pilotPerson', 'newPilotPerson'],
      desc: 'RFC1274: pilot person',
      sup: ['person'],
      kind: 'structural',
      may: [
        'uid', 'textEncodedORAddress', 'mail', 'drink', 'roomNumber',
        'userClass', 'homePhone', 'homePostalAddress', 'secretary',
        'personalTitle', 'preferredDeliveryMethod', 'businessCategory',
        'janetMailbox', 'otherMailbox', 'mobile', 'pager',
        'organizationalStatus', 'mailPreferenceOption', 'personalSignature',
      ],
    },
    {
      oid: '0.9.2342.19200300.100.4.15',
      names: ['dNSDomain'],
      desc: 'RFC1274: DNS domain with resource records',
      sup: ['domain'],
      kind: 'structural',
      may: ['aRecord', 'mDRecord', 'mXRecord', 'nSRecord', 'sOARecord', 'cNAMERecord'],
    },
  ],
};
