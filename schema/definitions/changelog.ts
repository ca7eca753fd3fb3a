/**
 * Change log entries after draft-good-ldap-changelog (Netscape / 389 DS /
 * Sun DSEE retro changelog), under the Netscape arc 2.16.840.1.113730.3.
 * Definitions follow 389 DS's 60changelog.ldif, which reproduces the draft.
 *
 *  - changeTime (.77) comes from Sun ONE / DSEE, which types it Directory
 *    String although it carries a GeneralizedTime; we type it generalizedTime.
 *    DSEE also makes changeTime a MUST of changeLogEntry; the draft does not,
 *    so it is a MAY here.
 *  - changelog (.35) is the root-DSE pointer to the changelog container
 *    (draft §3); the draft gives it no USAGE, so it is a user attribute.
 *  - firstChangeNumber / lastChangeNumber have no Netscape-arc OID anywhere we
 *    could verify (389 publishes them only as root-DSE values; OpenLDAP's
 *    contrib overlay uses the HP arc, OpenLDAP itself an experimental arc), so
 *    they are defined under our own arc in dcmx.ts.
 */
import type { SchemaModule } from '../types';

export const changelog: SchemaModule = {
  name: 'changelog',
  attributeTypes: [
    {
      oid: '2.16.840.1.113730.3.1.5',
      names: ['changeNumber'],
      desc: 'a number which uniquely identifies a change made to a directory entry',
      equality: 'integerMatch',
      ordering: 'integerOrderingMatch',
      syntax: 'integer',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.6',
      names: ['targetDN'],
      desc: 'the DN of the entry which was modified',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.7',
      names: ['changeType'],
      desc: 'the type of change made to an entry',
      equality: 'caseIgnoreMatch',
      syntax: 'directoryString',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.8',
      names: ['changes'],
      desc: 'a set of changes to apply to an entry',
      syntax: 'octetString',
    },
    {
      oid: '2.16.840.1.113730.3.1.9',
      names: ['newRDN'],
      desc: 'the new RDN of an entry which is the target of a modrdn operation',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.10',
      names: ['deleteOldRDN'],
      desc: 'a flag which indicates if the old RDN should be retained as an attribute of the entry',
      equality: 'booleanMatch',
      syntax: 'boolean',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.11',
      names: ['newSuperior'],
      desc: 'the new parent of an entry which is the target of a moddn operation',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
      singleValue: true,
    },
    {
      oid: '2.16.840.1.113730.3.1.35',
      names: ['changelog'],
      desc: 'the distinguished name of the entry which contains the set of entries comprising this servers changelog',
      equality: 'distinguishedNameMatch',
      syntax: 'dn',
    },
    {
      oid: '2.16.840.1.113730.3.1.77',
      names: ['changeTime'],
      desc: 'time the change was made (Sun ONE Directory Server)',
      equality: 'generalizedTimeMatch',
      ordering: 'generalizedTimeOrderingMatch',
      syntax: 'generalizedTime',
      singleValue: true,
    },
  ],
  objectClasses: [
    {
      oid: '2.16.840.1.113730.3.2.1',
      names: ['changeLogEntry'],
      desc: 'entry to represent changes made in the directory',
      sup: ['top'],
      kind: 'structural',
      must: ['changeNumber', 'targetDN', 'changeType'],
      may: ['changes', 'newRDN', 'deleteOldRDN', 'newSuperior', 'changeTime'],
    },
  ],
};
