/**
 * ldapjs filter objects to the directory's FilterInput (step one of the
 * two-step compile in STYLE.md). ldapjs re-escapes assertion values it
 * decoded from BER (RFC 4515 `\XX` form, non-ASCII bytes included), so every
 * value is unescaped back to its UTF-8 text here.
 */
import type { FilterInput } from '../directory/filter';

/** Undoes RFC 4515 §3 escaping: `\XX` hex pairs become bytes, decoded as UTF-8. */
export function unescapeFilterValue(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  const s = String(v ?? '');
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 2 < s.length && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** Converts an ldapjs filter tree. Depth is bounded by the framing's nesting limit. */
export function fromLdapjsFilter(f: any): FilterInput {
  switch (f.type) {
    case 'AndFilter':
      return { type: 'and', filters: (f.filters as any[]).map(fromLdapjsFilter) };
    case 'OrFilter':
      return { type: 'or', filters: (f.filters as any[]).map(fromLdapjsFilter) };
    case 'NotFilter':
      return { type: 'not', filter: fromLdapjsFilter(f.filter) };
    case 'EqualityFilter':
      return { type: 'equal', attr: f.attribute, value: unescapeFilterValue(f.value) };
    case 'ApproximateFilter':
      return { type: 'approx', attr: f.attribute, value: unescapeFilterValue(f.value) };
    case 'GreaterThanEqualsFilter':
      return { type: 'ge', attr: f.attribute, value: unescapeFilterValue(f.value) };
    case 'LessThanEqualsFilter':
      return { type: 'le', attr: f.attribute, value: unescapeFilterValue(f.value) };
    case 'PresenceFilter':
      return { type: 'present', attr: f.attribute };
    case 'SubstringFilter':
      return {
        type: 'substrings',
        attr: f.attribute,
        initial: f.initial ? unescapeFilterValue(f.initial) : undefined,
        any: ((f.any ?? []) as unknown[]).map(unescapeFilterValue),
        final: f.final ? unescapeFilterValue(f.final) : undefined,
      };
    case 'ExtensibleFilter': {
      const j = f.json;
      return {
        type: 'extensible',
        attr: j.matchType || undefined,
        rule: j.matchRule || undefined,
        dnAttributes: !!j.dnAttributes,
        value: unescapeFilterValue(j.matchValue),
      };
    }
    default:
      throw new Error(`unsupported filter type ${f.type}`);
  }
}
