/**
 * Entries as the directory sees them: conversion between stored attribute
 * maps and schema-typed values, the index rows an entry produces, its
 * matching view for filters, and attribute selection for results
 * (RFC 4511 §4.5.1.8).
 */
import type { AttributeType, Schema, TypedAttrs } from '../../schema/registry';
import { isUtf8 } from 'node:buffer';
import { parseDn } from '../../schema/dn';
import type { AttrMap, IndexRow } from '../../storage/store';
import type { MatchTarget } from './filter';
import { DirectoryError } from './errors';

/** An entry ready to be filtered and returned. `id` is negative for virtual entries. */
export interface DirEntry {
  id: number;
  dn: string;
  ndn: string;
  attrs: AttrMap;
}

/** One attribute of a result: canonical name and values (empty when typesOnly). */
export type ResultAttr = [name: string, values: string[]];

/** Attribute descriptions and values as a protocol hands them over. */
export interface AttrInput {
  type: string;
  values: string[];
}

/** Converts protocol attributes to typed ones, merging aliases. Throws undefinedAttributeType (17). */
export function typedAttrs(schema: Schema, input: Iterable<AttrInput>): TypedAttrs {
  const out: TypedAttrs = new Map();
  for (const a of input) {
    const at = schema.attr(a.type);
    if (!at) throw new DirectoryError('undefinedAttributeType', `${a.type}: attribute type undefined`);
    const have = out.get(at);
    if (have) have.push(...a.values);
    else out.set(at, [...a.values]);
  }
  return out;
}

/** Typed attributes of a stored map (unknown names, e.g. from a schema change, are dropped). */
export function typedFromStored(schema: Schema, attrs: AttrMap): TypedAttrs {
  const out: TypedAttrs = new Map();
  for (const k of Object.keys(attrs)) {
    const at = schema.attr(k);
    if (at) out.set(at, attrs[k].slice());
  }
  return out;
}

/** Stored form of typed attributes: canonical names. */
export function storedFromTyped(attrs: TypedAttrs): AttrMap {
  const out: AttrMap = {};
  for (const [at, values] of attrs) if (values.length) out[at.name] = values;
  return out;
}

/**
 * The normalised values of an entry for one attribute. objectClass values
 * expand to every superclass, so `(objectClass=domain)` finds dNSDomain
 * entries (RFC 4512 §2.4.1), both in the index and in code.
 */
export function normalizedValues(schema: Schema, at: AttributeType, values: readonly string[]): string[] {
  if (at === schema.objectClassType) {
    const out = new Set<string>();
    for (const v of values) {
      const oc = schema.objectClass(v);
      if (!oc) {
        out.add(v.toLowerCase());
        continue;
      }
      for (const a of oc.ancestors) out.add(a.lname);
    }
    return [...out];
  }
  const out: string[] = [];
  for (const v of values) {
    const n = at.normalize(v);
    if (n !== undefined) out.push(n);
  }
  return out;
}

/** Index rows for an entry (the store keeps only those of indexed attributes). */
export function indexRows(schema: Schema, attrs: AttrMap, indexed: ReadonlySet<string>): IndexRow[] {
  const rows: IndexRow[] = [];
  for (const k of Object.keys(attrs)) {
    const at = schema.attr(k);
    if (!at || !indexed.has(at.lname)) continue;
    for (const norm of normalizedValues(schema, at, attrs[k])) rows.push({ attr: at.lname, norm });
  }
  return rows;
}

/**
 * Values an entry does not store but the server computes (RFC 4512 §3.4
 * operational attributes such as hasSubordinates or entryDN), by type.
 */
export type ComputedValues = (at: AttributeType) => string[] | undefined;

/**
 * The matching view of an entry. `hidden` lists attributes the reader may not
 * see; they are absent for filter evaluation too, so a filter cannot probe
 * what a search would not return. `computed` supplies the operational
 * attributes the server computes, so filters can test them as a search
 * returns them.
 */
export function matchTarget(schema: Schema, e: DirEntry, hidden?: ReadonlySet<AttributeType>, computed?: ComputedValues): MatchTarget {
  const cache = new Map<AttributeType, string[] | undefined>();
  let byType: Map<AttributeType, string[]> | undefined;
  const stored = () => {
    if (!byType) {
      byType = new Map();
      for (const k of Object.keys(e.attrs)) {
        const t = schema.attr(k);
        if (t && !hidden?.has(t)) byType.set(t, e.attrs[k]);
      }
    }
    return byType;
  };
  const raw = (at: AttributeType) => (hidden?.has(at) ? undefined : stored().get(at) ?? computed?.(at));
  return {
    raw,
    values(at) {
      if (cache.has(at)) return cache.get(at);
      const r = raw(at);
      const v = r && normalizedValues(schema, at, r);
      cache.set(at, v);
      return v;
    },
    types() {
      return stored().keys();
    },
    dnValues() {
      const out: { attr: AttributeType | undefined; value: string }[] = [];
      try {
        for (const rdn of parseDn(e.dn)) for (const ava of rdn) out.push({ attr: schema.attr(ava.type), value: ava.value });
      } catch {
        /* stored DNs always parse */
      }
      return out;
    },
  };
}

/** What a search asked for, parsed once per request (RFC 4511 §4.5.1.8, RFC 3673, RFC 4529). */
export interface AttrSelection {
  allUser: boolean;
  allOperational: boolean;
  /** Explicitly requested types, with their subtypes. */
  types: Set<AttributeType>;
}

/** Parses a requested attribute list. Unknown names are ignored (RFC 4511 §4.5.1.8). */
export function parseSelection(schema: Schema, requested: readonly string[]): AttrSelection {
  const sel: AttrSelection = { allUser: false, allOperational: false, types: new Set() };
  if (requested.length === 0) {
    sel.allUser = true;
    return sel;
  }
  for (const r of requested) {
    if (r === '*') sel.allUser = true;
    else if (r === '+') sel.allOperational = true;
    else if (r === '1.1') continue; // RFC 4511 §4.5.1.8: no attributes (ignored alongside others)
    else if (r.startsWith('@')) {
      // RFC 4529 §2: "@class" asks for every attribute type the class (with its superclasses) allows; unknown classes are ignored.
      const oc = schema.objectClass(r.slice(1));
      if (!oc) continue;
      for (const at of [...oc.must, ...oc.may]) {
        sel.types.add(at);
        for (const s of at.subtypes) sel.types.add(s);
      }
    } else {
      const at = schema.attr(r);
      if (!at) continue;
      sel.types.add(at);
      for (const s of at.subtypes) sel.types.add(s);
    }
  }
  return sel;
}

/** True when a type is selected. */
export function selected(sel: AttrSelection, at: AttributeType): boolean {
  if (sel.types.has(at)) return true;
  return at.operational ? sel.allOperational : sel.allUser;
}

/**
 * Values are stored as strings. A value that is not valid UTF-8 (a JPEG, a
 * certificate) is kept as this prefix plus its base64; protocols turn it
 * back into bytes with `valueToBytes`.
 */
export const BINARY_PREFIX = '\u0000b64:';

/** Stored form of raw value bytes. */
export function valueFromBytes(b: Buffer): string {
  return isUtf8(b) ? b.toString('utf8') : BINARY_PREFIX + b.toString('base64');
}

/** Wire form of a stored value: the string itself, or the bytes of a binary value. */
export function valueToBytes(v: string): string | Buffer {
  return v.startsWith(BINARY_PREFIX) ? Buffer.from(v.slice(BINARY_PREFIX.length), 'base64') : v;
}

/**
 * Wire form of result attributes: `attrs` itself when no value is binary
 * (most entries: nothing to copy), else a copy with each value through
 * valueToBytes.
 */
export function wireAttributes(attrs: readonly ResultAttr[]): readonly (readonly [string, readonly (string | Buffer)[]])[] {
  for (const [, values] of attrs) {
    for (const v of values) if (v.startsWith(BINARY_PREFIX)) return attrs.map(([n, vs]) => [n, vs.map(valueToBytes)] as const);
  }
  return attrs;
}

/** Current time as GeneralizedTime (RFC 4517 §3.3.13), seconds precision. */
export function generalizedTimeNow(d = new Date()): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** The RFC 4530 entryUUID of an entry's stored attributes (null for an entry without one). */
export function entryUuidOf(attrs: Record<string, string[]>): string | null {
  return attrs.entryUUID?.[0] ?? null;
}
