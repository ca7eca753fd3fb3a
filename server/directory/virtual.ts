/**
 * Entries the directory computes rather than stores: the root DSE
 * (RFC 4512 §5.1), the subschema subentry (RFC 4512 §4.2) and the change log
 * (draft-good-ldap-changelog §3) at `cn=changelog`.
 */
import type { Schema } from '../../schema/registry';
import { formatLdifAttributes, formatLdifModifications } from '../../schema/ldif';
import type { ChangeRecord } from '../../storage/store';
import { generalizedTimeNow, valueToBytes, type DirEntry } from './entry';

export const ROOT_DSE_ID = -1;
export const SUBSCHEMA_ID = -2;
export const CHANGELOG_ID = -3;
export const SUBSCHEMA_DN = 'cn=Subschema';
export const CHANGELOG_DN = 'cn=changelog';

/** Protocol features a front end announces in the root DSE. */
export interface RootDseFeatures {
  supportedControl: string[];
  supportedExtension: string[];
  supportedFeatures: string[];
  supportedSASLMechanisms?: string[];
}

/** The vendor strings of RFC 3045. */
export const VENDOR_NAME = 'dcmx';
export const VENDOR_VERSION = 'dcmx 0.1.0';

/** Builds the root DSE; `contextCsn` is the CSN of the last change (the Content Sync provider's state, RFC 4533). */
export function rootDse(suffix: string, features: RootDseFeatures, changes: { first: number; last: number }, contextCsn: string): DirEntry {
  return {
    id: ROOT_DSE_ID,
    dn: '',
    ndn: '',
    attrs: {
      objectClass: ['top', 'extensibleObject'],
      namingContexts: [suffix],
      subschemaSubentry: [SUBSCHEMA_DN],
      supportedLDAPVersion: ['3'],
      supportedControl: features.supportedControl,
      supportedExtension: features.supportedExtension,
      supportedFeatures: features.supportedFeatures,
      ...(features.supportedSASLMechanisms?.length ? { supportedSASLMechanisms: features.supportedSASLMechanisms } : {}),
      vendorName: [VENDOR_NAME],
      vendorVersion: [VENDOR_VERSION],
      changelog: [CHANGELOG_DN],
      firstChangeNumber: [String(changes.first)],
      lastChangeNumber: [String(changes.last)],
      contextCSN: [contextCsn],
    },
  };
}

/** When this process loaded the schema: the subentry's timestamps (the schema changes only with the software). */
const SCHEMA_LOADED = generalizedTimeNow();

/**
 * Builds the subschema subentry from the registry, with createTimestamp and
 * modifyTimestamp (RFC 4512 §4.2: clients cache the schema by them).
 */
export function subschemaEntry(schema: Schema, ndn: string): DirEntry {
  const d = schema.descriptions();
  return {
    id: SUBSCHEMA_ID,
    dn: SUBSCHEMA_DN,
    ndn,
    attrs: {
      objectClass: ['top', 'subschema', 'extensibleObject'],
      cn: ['Subschema'],
      attributeTypes: d.attributeTypes,
      objectClasses: d.objectClasses,
      matchingRules: d.matchingRules,
      matchingRuleUse: d.matchingRuleUse,
      ldapSyntaxes: d.ldapSyntaxes,
      createTimestamp: [SCHEMA_LOADED],
      modifyTimestamp: [SCHEMA_LOADED],
    },
  };
}

/** The `cn=changelog` container. */
export function changelogContainer(ndn: string): DirEntry {
  return { id: CHANGELOG_ID, dn: CHANGELOG_DN, ndn, attrs: { objectClass: ['top', 'extensibleObject'], cn: ['changelog'] } };
}

/**
 * One change of the feed shown as the entry `changeNumber=N,cn=changelog`
 * (draft-good-ldap-changelog §3): its `changes` attribute is the LDIF
 * (RFC 2849) of the change's data — the attribute lines of an add, the
 * mod-specs of a modify. Ids are -(1000 + N) so they never meet stored ids.
 */
export function changeEntry(c: ChangeRecord, changelogNdn: string): DirEntry {
  const attrs: Record<string, string[]> = {
    objectClass: ['top', 'changeLogEntry'],
    changeNumber: [String(c.changeNumber)],
    changeTime: [c.changeTime],
    changeType: [c.changeType],
    targetDN: [c.targetDN],
  };
  switch (c.changeType) {
    case 'add':
      attrs.changes = [formatLdifAttributes(Object.entries(c.attributes).map(([k, vs]) => [k, vs.map(valueToBytes)]))];
      break;
    case 'modify':
      attrs.changes = [formatLdifModifications(c.modifications.map((m) => ({ op: m.op, attr: m.type, values: m.values.map(valueToBytes) })))];
      break;
    case 'modrdn':
      attrs.newRDN = [c.newRDN];
      attrs.deleteOldRDN = [c.deleteOldRDN ? 'TRUE' : 'FALSE'];
      if (c.newSuperior !== null) attrs.newSuperior = [c.newSuperior];
      break;
  }
  return {
    id: -(1000 + c.changeNumber),
    dn: `changeNumber=${c.changeNumber},${CHANGELOG_DN}`,
    ndn: `changenumber=${c.changeNumber},${changelogNdn}`,
    attrs,
  };
}
