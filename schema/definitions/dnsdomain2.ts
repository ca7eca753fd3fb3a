/**
 * The Uninett DNS schema as shipped with PowerDNS's LDAP backend
 * (modules/ldapbackend/dnsdomain2.schema), checked against that file:
 * class dNSDomain2 (1.3.6.1.4.1.2428.20.2, SUP dNSDomain, STRUCTURAL),
 * dNSTTL (1.3.6.1.4.1.2428.20.0.0), dNSClass (1.3.6.1.4.1.2428.20.0.1), and
 * one record attribute per RR type at 1.3.6.1.4.1.2428.20.1.<RR type number>.
 * A, MD, MX, NS, SOA and CNAME come from RFC 1274 (cosine.ts, dNSDomain).
 *
 * Every record attribute is caseIgnoreIA5Match / caseIgnoreIA5SubstringsMatch
 * over IA5 String, multi-valued. dNSTTL is INTEGER with ORDERING
 * integerOrderingMatch and is *not* SINGLE-VALUE in the shipped schema; nor is
 * it here.
 *
 * Spellings are the shipped file's, which is not uniform: 'SigRecord',
 * 'KeyRecord', 'LocRecord', 'EUI48Record', 'EUI64Record', 'TYPE65226Record'
 * and 'TYPE65534Record' start upper-case where the others use the
 * lower-first-letter convention, and the class's MAY list uses yet other
 * spellings (DNSTTL, PTRRecord, ...). Names match case-insensitively, so the
 * attribute-type spellings are canonical and the MAY list below uses them.
 * Every type the shipped class names is defined, including WKS, GPOS, NSEC3,
 * NSEC3PARAM, OPENPGPKEY, EUI48/64, TKEY, URI, DLV and the two private-use
 * TYPE655xx attributes, so the class resolves exactly as PowerDNS ships it.
 */
import type { AttributeTypeDef, SchemaModule } from '../types';

const ARC = '1.3.6.1.4.1.2428.20';

/** One RR attribute: `<ARC>.1.<rrType>`. */
function rr(rrType: number, name: string, desc: string): AttributeTypeDef {
  return {
    oid: `${ARC}.1.${rrType}`,
    names: [name],
    desc,
    equality: 'caseIgnoreIA5Match',
    substr: 'caseIgnoreIA5SubstringsMatch',
    syntax: 'ia5String',
  };
}

const records: AttributeTypeDef[] = [
  rr(11, 'wKSRecord', 'a well known service description, RFC 1035'),
  rr(12, 'pTRRecord', 'domain name pointer, RFC 1035'),
  rr(13, 'hInfoRecord', 'host information, RFC 1035'),
  rr(14, 'mInfoRecord', 'mailbox or mail list information, RFC 1035'),
  rr(16, 'tXTRecord', 'text string, RFC 1035'),
  rr(17, 'rPRecord', 'for Responsible Person, RFC 1183'),
  rr(18, 'aFSDBRecord', 'for AFS Data Base location, RFC 1183'),
  rr(24, 'SigRecord', 'Signature, RFC 2535'),
  rr(25, 'KeyRecord', 'Key, RFC 2535'),
  rr(27, 'gPosRecord', 'Geographical Position, RFC 1712'),
  rr(28, 'aAAARecord', 'IPv6 address, RFC 1886'),
  rr(29, 'LocRecord', 'Location, RFC 1876'),
  rr(30, 'nXTRecord', 'non-existant, RFC 2535'),
  rr(33, 'sRVRecord', 'service location, RFC 2782'),
  rr(35, 'nAPTRRecord', 'Naming Authority Pointer, RFC 2915'),
  rr(36, 'kXRecord', 'Key Exchange Delegation, RFC 2230'),
  rr(37, 'certRecord', 'certificate, RFC 2538'),
  rr(38, 'a6Record', 'A6 Record Type, RFC 2874'),
  rr(39, 'dNameRecord', 'Non-Terminal DNS Name Redirection, RFC 2672'),
  rr(42, 'aPLRecord', 'Lists of Address Prefixes, RFC 3123'),
  rr(43, 'dSRecord', 'Delegation Signer, RFC 3658'),
  rr(44, 'sSHFPRecord', 'SSH Key Fingerprint, RFC 4255'),
  rr(45, 'iPSecKeyRecord', 'IPsec keying material, RFC 4025'),
  rr(46, 'rRSIGRecord', 'RRSIG, RFC 3755'),
  rr(47, 'nSECRecord', 'NSEC, RFC 3755'),
  rr(48, 'dNSKeyRecord', 'DNSKEY, RFC 3755'),
  rr(49, 'dHCIDRecord', 'DHCID, RFC 4701'),
  rr(50, 'nSEC3Record', 'NSEC record version 3, RFC 5155'),
  rr(51, 'nSEC3PARAMRecord', 'NSEC3 parameters, RFC 5155'),
  rr(52, 'tLSARecord', 'TLSA certificate association, RFC 6698'),
  rr(59, 'cDSRecord', 'Child DS, RFC 7344'),
  rr(60, 'cDNSKeyRecord', 'DNSKEY(s) the Child wants reflected in DS, RFC 7344'),
  rr(61, 'openPGPKeyRecord', 'OpenPGP Key, RFC 7929'),
  rr(99, 'sPFRecord', 'Sender Policy Framework, RFC 4408'),
  rr(108, 'EUI48Record', 'EUI-48 address, RFC 7043'),
  rr(109, 'EUI64Record', 'EUI-64 address, RFC 7043'),
  rr(249, 'tKeyRecord', 'Transaction Key, RFC 2930'),
  rr(256, 'uRIRecord', 'URI, RFC 7553'),
  rr(257, 'cAARecord', 'Certification Authority Restriction, RFC 6844'),
  rr(32769, 'dLVRecord', 'DNSSEC Lookaside Validation, RFC 4431'),
  rr(65226, 'TYPE65226Record', 'private-use RR type 65226'),
  rr(65534, 'TYPE65534Record', 'private-use RR type 65534'),
];

export const dnsDomain2: SchemaModule = {
  name: 'dnsdomain2',
  attributeTypes: [
    {
      oid: `${ARC}.0.0`,
      names: ['dNSTTL'],
      desc: 'An integer denoting time to live',
      equality: 'integerMatch',
      ordering: 'integerOrderingMatch',
      syntax: 'integer',
    },
    {
      oid: `${ARC}.0.1`,
      names: ['dNSClass'],
      desc: 'The class of a resource record',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
    },
    ...records,
  ],
  objectClasses: [
    {
      oid: `${ARC}.2`,
      names: ['dNSDomain2'],
      desc: 'DNS zone data (Uninett dnsdomain2, as used by PowerDNS)',
      sup: ['dNSDomain'],
      kind: 'structural',
      may: ['dNSTTL', 'dNSClass', ...records.map((r) => r.names[0])],
    },
  ],
};
