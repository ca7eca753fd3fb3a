/**
 * inetOrgPerson (RFC 2798), with labeledURI and labeledURIObject (RFC 2079),
 * which inetOrgPerson's MAY list names.
 *
 * The MAY list refers to attributes defined elsewhere: audio, photo,
 * homePhone, homePostalAddress, mail, manager, mobile, pager, roomNumber,
 * secretary (cosine); businessCategory, givenName, initials, o, uid,
 * userCertificate, x500UniqueIdentifier (core). RFC 2798 spells the last one
 * 'x500uniqueIdentifier'; the canonical RFC 4519 spelling is used.
 *
 * JPEG, Binary and PKCS#7/PKCS#12 values map to octetString. RFC 2798 gives no
 * EQUALITY for jpegPhoto, userSMIMECertificate and userPKCS12; none is set.
 */
import type { SchemaModule } from '../types';

export const inetOrgPerson: SchemaModule = {
  name: 'inetorgperson',
  attributeTypes: [
    {
      oid: '2.16.840.1.113730.3.1.1',
      names: ['carLicense'],
      desc: 'RFC2798: vehicle license or registration plate',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.16.840.1.113730.3.1.2',
      names: ['departmentNumber'],
      desc: 'RFC2798: identifies a department within an organization',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '2.16.840.1.113730.3.1.241',
      names: ['displayName'],
      desc: 'RFC2798: preferred name to be used when displaying entries',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.3',
      names: ['employeeNumber'],
      desc: 'RFC2798: numerically identifies an employee within an organization',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.4',
      names: ['employeeType'],
      desc: 'RFC2798: type of employment for a person',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
    },
    {
      oid: '0.9.2342.19200300.100.1.60',
      names: ['jpegPhoto'],
      desc: 'RFC2798: a JPEG image',
      syntax: 'octetString', // JPEG
    },
    {
      oid: '2.16.840.1.113730.3.1.39',
      names: ['preferredLanguage'],
      desc: 'RFC2798: preferred written or spoken language for a person',
      equality: 'caseIgnoreMatch',
      substr: 'caseIgnoreSubstringsMatch',
      syntax: 'directoryString',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.40',
      names: ['userSMIMECertificate'],
      desc: 'RFC2798: PKCS#7 SignedData used to support S/MIME',
      syntax: 'octetString', // Binary
    },
    {
      oid: '2.16.840.1.113730.3.1.216',
      names: ['userPKCS12'],
      desc: 'RFC2798: personal identity information, a PKCS #12 PFX',
      syntax: 'octetString', // Binary
    },
    {
      oid: '1.3.6.1.4.1.250.1.57',
      names: ['labeledURI'],
      desc: 'RFC2079: Uniform Resource Identifier with optional label',
      equality: 'caseExactMatch',
      syntax: 'directoryString',
    },
  ],
  objectClasses: [
    {
      oid: '2.16.840.1.113730.3.2.2',
      names: ['inetOrgPerson'],
      desc: 'RFC2798: Internet Organizational Person',
      sup: ['organizationalPerson'],
      kind: 'structural',
      may: [
        'audio', 'businessCategory', 'carLicense', 'departmentNumber',
        'displayName', 'employeeNumber', 'employeeType', 'givenName',
        'homePhone', 'homePostalAddress', 'initials', 'jpegPhoto',
        'labeledURI', 'mail', 'manager', 'mobile', 'o', 'pager',
        'photo', 'roomNumber', 'secretary', 'uid', 'userCertificate',
        'x500UniqueIdentifier', 'preferredLanguage',
        'userSMIMECertificate', 'userPKCS12',
      ],
    },
    {
      oid: '1.3.6.1.4.1.250.3.15',
      names: ['labeledURIObject'],
      desc: 'RFC2079: object that contains the URI attribute type',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['labeledURI'],
    },
  ],
};
