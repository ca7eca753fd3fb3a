/**
 * The directory's own search filter: a small discriminated union, already
 * resolved against the schema (attribute types looked up, assertion values
 * normalised by the matching rule), flattened and with constants folded.
 *
 * Protocol layers build a `FilterInput` (names and raw values, e.g. decoded
 * from a SearchRequest by server/ldap/search-decode.ts) and call `compileFilter`; storage/ turns the result into SQL;
 * `matches` evaluates it in code with the same normal forms.
 */
import type { AttributeType, Schema } from '../../schema/registry';
import { approximateKeys, approximateMatch, normalizerFor, ruleInfo, type MatchingRuleInfo, type Normalizer } from '../../schema/matching';
import type { MatchingRuleName } from '../../schema/types';

/** A filter as a protocol hands it over: attribute names and raw values (RFC 4511 §4.5.1.7). */
export type FilterInput =
  | { type: 'and'; filters: FilterInput[] }
  | { type: 'or'; filters: FilterInput[] }
  | { type: 'not'; filter: FilterInput }
  | { type: 'equal' | 'approx' | 'ge' | 'le'; attr: string; value: string }
  | { type: 'present'; attr: string }
  | { type: 'substrings'; attr: string; initial?: string; any: string[]; final?: string }
  | { type: 'extensible'; attr?: string; rule?: string; dnAttributes: boolean; value: string };

/** A compiled filter. Values are in normal form. */
export type Filter =
  | { type: 'and'; filters: Filter[] }
  | { type: 'or'; filters: Filter[] }
  | { type: 'not'; filter: Filter }
  | { type: 'eq'; attr: AttributeType; norm: string }
  | { type: 'present'; attr: AttributeType }
  /** approxMatch (RFC 4511 §4.5.1.7.6) on a string attribute: assertion keys of schema/matching.ts approximateKeys. */
  | { type: 'approx'; attr: AttributeType; keys: string[] }
  | { type: 'sub'; attr: AttributeType; initial?: string; any: string[]; final?: string }
  | { type: 'ge' | 'le'; attr: AttributeType; norm: string }
  /**
   * Extensible match: `test` decides a stored value under the requested rule
   * (with its normal forms, so caseExactMatch sees the case); without `attr`,
   * every attribute for which `applies` holds is tried (RFC 4511 §4.5.1.7.7).
   */
  | { type: 'ext'; attr?: AttributeType; test: (value: string) => boolean; dnAttributes: boolean; applies: (at: AttributeType) => boolean }
  | { type: 'const'; value: boolean }
  /** RFC 4511 §4.5.1.7: an item the server cannot evaluate (unknown attribute, invalid assertion value). */
  | { type: 'undefined' };

const TRUE: Filter = { type: 'const', value: true };
const FALSE: Filter = { type: 'const', value: false };
const UNDEFINED: Filter = { type: 'undefined' };

/** Thrown for a filter that cannot be evaluated at all (an unknown matching rule in an extensible match). */
export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterError';
  }
}

/**
 * Compiles a protocol filter against the schema. An unknown attribute, an
 * attribute without the matching rule the item needs, or an assertion value
 * invalid for the rule makes that item Undefined (RFC 4511 §4.5.1.7), and
 * Undefined propagates by its three-valued logic: NOT Undefined is Undefined,
 * an AND holding one is FALSE or Undefined, an OR holding one is TRUE or
 * Undefined; only TRUE selects an entry. Throws FilterError for an unknown
 * matching rule, which RFC 4511 §4.5.1.7.7 says is an error.
 */
export function compileFilter(schema: Schema, f: FilterInput): Filter {
  switch (f.type) {
    case 'and':
    case 'or': {
      const isAnd = f.type === 'and';
      const out: Filter[] = [];
      let undef = false;
      for (const sub of f.filters) {
        const c = compileFilter(schema, sub);
        if (c.type === 'const') {
          if (c.value === isAnd) continue; // identity element
          return c; // absorbing element
        }
        if (c.type === 'undefined') undef = true;
        else if (c.type === f.type) out.push(...c.filters);
        else out.push(c);
      }
      // RFC 4526: the empty AND is true, the empty OR is false.
      if (out.length === 0) return undef ? UNDEFINED : isAnd ? TRUE : FALSE;
      // RFC 4511 §4.5.1.7: AND(x, Undefined) is FALSE where x is, else Undefined; OR likewise with TRUE.
      if (undef) out.push(UNDEFINED);
      if (out.length === 1) return out[0];
      return { type: f.type, filters: out };
    }
    case 'not': {
      const c = compileFilter(schema, f.filter);
      if (c.type === 'const') return c.value ? FALSE : TRUE;
      if (c.type === 'undefined') return c;
      if (c.type === 'not') return c.filter;
      return { type: 'not', filter: c };
    }
    case 'present': {
      const attr = schema.attr(f.attr);
      if (!attr) return UNDEFINED;
      if (attr === schema.objectClassType) return TRUE;
      return { type: 'present', attr };
    }
    case 'approx': {
      const attr = schema.attr(f.attr);
      if (!attr || !attr.equality) return UNDEFINED;
      // String attributes get the approximate rule; for the others (numbers, DNs, times ...) it is their equality.
      if (APPROX_RULES.has(attr.equality) && attr !== schema.objectClassType) {
        const keys = approximateKeys(f.value);
        return keys.length ? { type: 'approx', attr, keys } : UNDEFINED;
      }
      const norm = normalizeAssertion(schema, attr, f.value);
      return norm === undefined ? UNDEFINED : { type: 'eq', attr, norm };
    }
    case 'equal': {
      const attr = schema.attr(f.attr);
      if (!attr || !attr.equality) return UNDEFINED;
      const norm = normalizeAssertion(schema, attr, f.value);
      return norm === undefined ? UNDEFINED : { type: 'eq', attr, norm };
    }
    case 'ge':
    case 'le': {
      const attr = schema.attr(f.attr);
      if (!attr || !attr.equality) return UNDEFINED;
      const norm = attr.normalize(f.value);
      return norm === undefined ? UNDEFINED : { type: f.type, attr, norm };
    }
    case 'substrings': {
      const attr = schema.attr(f.attr);
      if (!attr || !attr.equality) return UNDEFINED;
      const piece = (s: string | undefined) => (s === undefined ? undefined : substringNormalize(attr.equality, s));
      const initial = piece(f.initial);
      const final = piece(f.final);
      const any = f.any.map((a) => piece(a)!).filter((a) => a !== '');
      return { type: 'sub', attr, initial: initial || undefined, any, final: final || undefined };
    }
    case 'extensible': {
      let attr: AttributeType | undefined;
      if (f.attr) {
        attr = schema.attr(f.attr);
        if (!attr) return UNDEFINED;
      }
      let test: ((v: string) => boolean) | undefined;
      let applies: (at: AttributeType) => boolean;
      if (f.rule) {
        const rule = ruleInfo(f.rule);
        if (!rule) throw new FilterError(`unknown matching rule '${f.rule}'`);
        test = ruleTest(schema, rule, f.value);
        applies = (at) => schema.ruleApplies(rule, at);
      } else if (attr && attr.equality) {
        test = equalityTest(attr.normalize, f.value);
        applies = (at) => at === attr;
      } else {
        throw new FilterError('extensible match needs a matching rule or an attribute with equality');
      }
      if (!test) return UNDEFINED;
      return { type: 'ext', attr, test, dnAttributes: f.dnAttributes, applies };
    }
  }
}

/**
 * The test of a stored value under `rule` against the assertion `value`
 * (RFC 4517 §4.2), undefined when the assertion is not valid for the rule:
 * an equality rule compares normal forms; an ordering rule is TRUE when the
 * value is less than the assertion; a substrings rule reads the assertion in
 * the Substring Assertion syntax (RFC 4517 §3.3.30) and cuts normal forms.
 */
function ruleTest(schema: Schema, rule: MatchingRuleInfo, value: string): ((v: string) => boolean) | undefined {
  const normalize: Normalizer = rule.equality === 'distinguishedNameMatch' ? (v) => schema.normalizeDnValue(v) : normalizerFor(rule.equality);
  switch (rule.usage) {
    case 'equality':
      return equalityTest(normalize, value);
    case 'ordering': {
      const norm = normalize(value);
      if (norm === undefined) return undefined;
      return (v) => {
        const n = normalize(v);
        return n !== undefined && compareOrdered(rule.equality, n, norm) < 0;
      };
    }
    case 'substrings': {
      const pieces = substringAssertion(value);
      if (!pieces) return undefined;
      const piece = (p: string | undefined) => (p ? substringNormalize(rule.equality, p) || undefined : undefined);
      const initial = piece(pieces.initial);
      const final = piece(pieces.final);
      const any = pieces.any.map((a) => substringNormalize(rule.equality, a)).filter((a) => a !== '');
      return (v) => {
        const n = normalize(v);
        return n !== undefined && substringMatch(n, initial, any, final);
      };
    }
  }
}

/** Equal normal forms under `normalize`; undefined when the assertion `value` has none. */
function equalityTest(normalize: Normalizer, value: string): ((v: string) => boolean) | undefined {
  const norm = normalize(value);
  return norm === undefined ? undefined : (v) => normalize(v) === norm;
}

/**
 * RFC 4517 §3.3.30 Substring Assertion: pieces between unescaped `*`, with
 * `\2A` and `\5C` standing for a literal `*` and `\`; undefined when the
 * value has no `*` or another escape.
 */
function substringAssertion(value: string): { initial?: string; any: string[]; final?: string } | undefined {
  const parts = value.split('*');
  if (parts.length < 2) return undefined;
  const pieces: string[] = [];
  for (const p of parts) {
    if (/\\(?![25][aAcC])|\\2[cC]|\\5[aA]/.test(p)) return undefined;
    pieces.push(p.replace(/\\(2[aA]|5[cC])/g, (_, h: string) => (h.toLowerCase() === '2a' ? '*' : '\\')));
  }
  return { initial: pieces[0] || undefined, any: pieces.slice(1, -1), final: pieces[pieces.length - 1] || undefined };
}

/** Equality rules of the attributes approxMatch treats as text. */
const APPROX_RULES = new Set<MatchingRuleName>(['caseIgnoreMatch', 'caseExactMatch', 'caseIgnoreIA5Match', 'caseExactIA5Match']);

/** Normal form of an assertion value; objectClass names map to their class (so OIDs and aliases match). */
function normalizeAssertion(schema: Schema, attr: AttributeType, value: string): string | undefined {
  if (attr === schema.objectClassType) {
    const oc = schema.objectClass(value.trim());
    return oc ? oc.lname : value.trim().toLowerCase();
  }
  return attr.normalize(value);
}

/**
 * Substring pieces are normalised without trimming their edges, since the
 * spaces at a piece's edge are significant inside the value (RFC 4518 §2.6.1
 * handles them specially; we fold case and collapse runs only).
 */
function substringNormalize(equality: MatchingRuleName | undefined, s: string): string {
  const caseless = equality === 'caseIgnoreMatch' || equality === 'caseIgnoreIA5Match' ||
    equality === 'distinguishedNameMatch' || equality === 'telephoneNumberMatch';
  let v = s.normalize('NFKC').replace(/[\s\u00a0]+/g, ' ');
  if (caseless) v = v.toLowerCase();
  if (equality === 'telephoneNumberMatch') v = v.replace(/[ -]/g, '');
  return v;
}

/** Matching view of an entry: values per attribute type (see `matchTarget` in entry.ts). */
export interface MatchTarget {
  /** Normalised values of exactly this attribute type (not subtypes), under its equality rule. */
  values(attr: AttributeType): readonly string[] | undefined;
  /** Values of exactly this attribute type as stored (for rules other than its equality). */
  raw(attr: AttributeType): readonly string[] | undefined;
  /** The attribute types the entry holds (that the reader may see). */
  types(): Iterable<AttributeType>;
  /** The entry's normalised DN RDN values, for extensible `:dn:` matching. */
  dnValues(): { attr: AttributeType | undefined; value: string }[];
}

/** True when the filter is TRUE for the entry (RFC 4511 §4.5.1.7: FALSE and Undefined do not match). */
export function matches(f: Filter, e: MatchTarget): boolean {
  return evaluate(f, e) === true;
}

/** Three-valued evaluation (RFC 4511 §4.5.1.7): TRUE, FALSE or Undefined (undefined). */
export function evaluate(f: Filter, e: MatchTarget): boolean | undefined {
  switch (f.type) {
    case 'const':
      return f.value;
    case 'undefined':
      return undefined;
    case 'and': {
      let r: boolean | undefined = true;
      for (const s of f.filters) {
        const v = evaluate(s, e);
        if (v === false) return false;
        if (v === undefined) r = undefined;
      }
      return r;
    }
    case 'or': {
      let terms = f.filters;
      if (terms.length > WIDE_OR) {
        // An equality is TRUE or FALSE, never Undefined: testing them first, as sets, keeps the three-valued result.
        const w = wideOr(f);
        for (const [attr, norms] of w.sets) if (anyValue(attr, e, (v) => norms.has(v))) return true;
        terms = w.rest;
      }
      let r: boolean | undefined = false;
      for (const s of terms) {
        const v = evaluate(s, e);
        if (v === true) return true;
        if (v === undefined) r = undefined;
      }
      return r;
    }
    case 'not': {
      const v = evaluate(f.filter, e);
      return v === undefined ? undefined : !v;
    }
    case 'present':
      return anyValue(f.attr, e, () => true);
    case 'eq':
      return anyValue(f.attr, e, (v) => v === f.norm);
    case 'approx':
      return anyRaw(f.attr, e, (v) => approximateMatch(approximateKeys(v), f.keys));
    case 'ge':
      return anyValue(f.attr, e, (v) => compareOrdered(f.attr.equality, v, f.norm) >= 0);
    case 'le':
      return anyValue(f.attr, e, (v) => compareOrdered(f.attr.equality, v, f.norm) <= 0);
    case 'sub':
      return anyValue(f.attr, e, (v) => substringMatch(v, f.initial, f.any, f.final));
    case 'ext': {
      // RFC 4511 §4.5.1.7.7: the stored values are compared under the requested rule.
      const test = f.test;
      if (f.attr) {
        if (anyRaw(f.attr, e, test)) return true;
      } else {
        for (const at of e.types()) if (f.applies(at) && e.raw(at)!.some(test)) return true;
      }
      if (f.dnAttributes) {
        for (const d of e.dnValues()) {
          if (!d.attr || (f.attr ? d.attr !== f.attr && !f.attr.subtypes.includes(d.attr) : !f.applies(d.attr))) continue;
          if (test(d.value)) return true;
        }
      }
      return false;
    }
  }
}

/** An OR with more terms than this has its equalities looked up in sets. */
const WIDE_OR = 16;

/** A wide OR split into its equalities (normal forms by attribute type) and its other terms. */
interface WideOr {
  sets: Map<AttributeType, Set<string>>;
  rest: Filter[];
}

const wideOrs = new WeakMap<Filter, WideOr>();

/** The split of a wide OR, made once per compiled filter (a search evaluates it for every candidate). */
function wideOr(f: Filter & { type: 'or' }): WideOr {
  let w = wideOrs.get(f);
  if (!w) {
    w = { sets: new Map(), rest: [] };
    for (const s of f.filters) {
      if (s.type !== 'eq') {
        w.rest.push(s);
        continue;
      }
      let norms = w.sets.get(s.attr);
      if (!norms) w.sets.set(s.attr, (norms = new Set()));
      norms.add(s.norm);
    }
    wideOrs.set(f, w);
  }
  return w;
}

function anyValue(attr: AttributeType, e: MatchTarget, test: (v: string) => boolean): boolean {
  const own = e.values(attr);
  if (own) for (const v of own) if (test(v)) return true;
  for (const sub of attr.subtypes) {
    const vs = e.values(sub);
    if (vs) for (const v of vs) if (test(v)) return true;
  }
  return false;
}

function anyRaw(attr: AttributeType, e: MatchTarget, test: (v: string) => boolean): boolean {
  for (const t of [attr, ...attr.subtypes]) {
    const vs = e.raw(t);
    if (vs) for (const v of vs) if (test(v)) return true;
  }
  return false;
}

/** Order of two normal forms under an equality rule's values: integers by value, others by code unit. */
function compareOrdered(equality: MatchingRuleName | undefined, a: string, b: string): number {
  if (equality === 'integerMatch') {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** RFC 4517 §4.2.6 style substring match on normal forms. */
export function substringMatch(v: string, initial: string | undefined, any: string[], final: string | undefined): boolean {
  let pos = 0;
  if (initial !== undefined) {
    if (!v.startsWith(initial)) return false;
    pos = initial.length;
  }
  let end = v.length;
  if (final !== undefined) {
    if (v.length - pos < final.length || !v.endsWith(final)) return false;
    end = v.length - final.length;
  }
  for (const a of any) {
    const i = v.indexOf(a, pos);
    if (i < 0 || i + a.length > end) return false;
    pos = i + a.length;
  }
  return true;
}
