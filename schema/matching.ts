/**
 * Matching rules (RFC 4517 §4.2) reduced to one normaliser per rule: two values
 * match under a rule exactly when their normal forms are equal. The same
 * normal forms are what storage/ indexes, so an indexed lookup and the
 * in-code filter evaluation always agree.
 *
 * String preparation follows RFC 4518 in simplified form: Unicode NFKC,
 * insignificant space handling (trim, collapse runs of spaces) and case
 * folding for the caseIgnore rules.
 */
import type { MatchingRuleName, SyntaxName } from './types';

/** Returns the normal form, or undefined when the value is not valid for the rule. */
export type Normalizer = (value: string) => string | undefined;

const SPACES = /[\s\u00a0]+/g;

/** RFC 4518 §2.6.1 insignificant space handling, simplified: trim and collapse. */
function squeeze(v: string): string {
  return v.normalize('NFKC').replace(SPACES, ' ').trim();
}

function caseIgnore(v: string): string {
  return squeeze(v).toLowerCase();
}

function isIA5(v: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(v);
}

function integer(v: string): string | undefined {
  const t = v.trim();
  if (!/^-?\d+$/.test(t)) return undefined;
  const neg = t.startsWith('-');
  const digits = (neg ? t.slice(1) : t).replace(/^0+(?=\d)/, '');
  return digits === '0' ? '0' : (neg ? '-' : '') + digits;
}

/** RFC 4517 §3.3.13 GeneralizedTime, normalised to YYYYMMDDHHMMSS(.fff)Z in UTC. */
function generalizedTime(v: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?([.,]\d+)?(Z|[+-]\d{2}(\d{2})?)$/.exec(v.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi = '00', s = '00', frac = '', tz] = m;
  let t = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
  if (Number.isNaN(t)) return undefined;
  if (tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const off = (+tz.slice(1, 3) * 60 + (tz.length > 3 ? +tz.slice(3, 5) : 0)) * 60000;
    t -= sign * off;
  }
  const iso = new Date(t).toISOString(); // 2024-01-02T03:04:05.000Z
  const base = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19);
  const f = frac.replace(',', '.').replace(/0+$/, '');
  return base + (f.length > 1 ? f : '') + 'Z';
}

const NORMALIZERS: Record<MatchingRuleName, Normalizer> = {
  caseIgnoreMatch: caseIgnore,
  caseExactMatch: squeeze,
  caseIgnoreIA5Match: (v) => (isIA5(v) ? v.replace(SPACES, ' ').trim().toLowerCase() : undefined),
  caseExactIA5Match: (v) => (isIA5(v) ? v.replace(SPACES, ' ').trim() : undefined),
  // DN values are normalised by the registry, which knows the attribute types
  // inside the RDNs; this fallback only folds case and spaces.
  distinguishedNameMatch: caseIgnore,
  integerMatch: integer,
  booleanMatch: (v) => {
    const u = v.trim().toUpperCase();
    return u === 'TRUE' || u === 'FALSE' ? u : undefined;
  },
  octetStringMatch: (v) => v,
  telephoneNumberMatch: (v) => caseIgnore(v).replace(/[ -]/g, ''),
  generalizedTimeMatch: generalizedTime,
  objectIdentifierMatch: (v) => {
    const t = v.trim().toLowerCase();
    return /^([0-9]+(\.[0-9]+)+|[a-z][a-z0-9-]*)$/.test(t) ? t : undefined;
  },
  numericStringMatch: (v) => (/^[0-9 ]*$/.test(v) ? v.replace(/ /g, '') : undefined),
  uuidMatch: (v) => {
    const t = v.trim().toLowerCase();
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(t) ? t : undefined;
  },
};

/** The normaliser of a matching rule. */
export function normalizerFor(rule: MatchingRuleName): Normalizer {
  return NORMALIZERS[rule];
}

/** What a matching rule decides (RFC 4517 §4.1): equality, ordering (less than) or substrings. */
export type RuleUsage = 'equality' | 'ordering' | 'substrings';

/** A matching rule as cn=Subschema describes it and as filters apply it. */
export interface MatchingRuleInfo {
  name: string;
  oid: string;
  /** Assertion syntax: the SYNTAX of its matchingRules description. */
  syntax: string;
  usage: RuleUsage;
  /** The equality rule whose normal forms it compares (its own name for an equality rule). */
  equality: MatchingRuleName;
  /**
   * Syntax of the attribute values the rule applies to whatever the type
   * names (RFC 4512 §4.1.4 matchingRuleUse): the assertion syntax for
   * equality and ordering rules; for substrings rules, whose assertion
   * syntax is Substring Assertion, the syntax of the strings they cut.
   */
  valueSyntax: string;
}

const S = (n: number) => `1.3.6.1.4.1.1466.115.121.1.${n}`;
const eq = (name: MatchingRuleName, oid: string, syntax: string): MatchingRuleInfo =>
  ({ name, oid, syntax, usage: 'equality', equality: name, valueSyntax: syntax });
const ord = (name: string, oid: string, equality: MatchingRuleName, syntax: string): MatchingRuleInfo =>
  ({ name, oid, syntax, usage: 'ordering', equality, valueSyntax: syntax });
const sub = (name: string, oid: string, equality: MatchingRuleName, valueSyntax: string): MatchingRuleInfo =>
  ({ name, oid, syntax: S(58), usage: 'substrings', equality, valueSyntax });

/** The equality rules we implement, with their RFC 4517 OIDs (RFC 4530 for uuidMatch). */
const MATCHING_RULES: MatchingRuleInfo[] = [
  eq('objectIdentifierMatch', '2.5.13.0', S(38)),
  eq('distinguishedNameMatch', '2.5.13.1', S(12)),
  eq('caseIgnoreMatch', '2.5.13.2', S(15)),
  eq('caseExactMatch', '2.5.13.5', S(15)),
  eq('numericStringMatch', '2.5.13.8', S(36)),
  eq('booleanMatch', '2.5.13.13', S(7)),
  eq('integerMatch', '2.5.13.14', S(27)),
  eq('octetStringMatch', '2.5.13.17', S(40)),
  eq('telephoneNumberMatch', '2.5.13.20', S(50)),
  eq('generalizedTimeMatch', '2.5.13.27', S(24)),
  eq('uuidMatch', '1.3.6.1.1.16.2', '1.3.6.1.1.16.1'),
  eq('caseExactIA5Match', '1.3.6.1.4.1.1466.109.114.1', S(26)),
  eq('caseIgnoreIA5Match', '1.3.6.1.4.1.1466.109.114.2', S(26)),
];

/**
 * Ordering and substrings rules that attribute types name (RFC 4517 §4.2,
 * RFC 4530 §3.2, and OpenLDAP's caseExactIA5SubstringsMatch, which RFC 2307's
 * nis schema uses): they compare the normal forms of their equality rule.
 * caseIgnoreListSubstringsMatch cuts Postal Address values (RFC 4517
 * §3.3.28), which we store as Directory Strings: it applies to the types
 * that name it.
 */
const DESCRIBED_RULES: MatchingRuleInfo[] = [
  ord('caseIgnoreOrderingMatch', '2.5.13.3', 'caseIgnoreMatch', S(15)),
  sub('caseIgnoreSubstringsMatch', '2.5.13.4', 'caseIgnoreMatch', S(15)),
  ord('caseExactOrderingMatch', '2.5.13.6', 'caseExactMatch', S(15)),
  sub('caseExactSubstringsMatch', '2.5.13.7', 'caseExactMatch', S(15)),
  ord('numericStringOrderingMatch', '2.5.13.9', 'numericStringMatch', S(36)),
  sub('numericStringSubstringsMatch', '2.5.13.10', 'numericStringMatch', S(36)),
  sub('caseIgnoreListSubstringsMatch', '2.5.13.12', 'caseIgnoreMatch', S(41)),
  ord('integerOrderingMatch', '2.5.13.15', 'integerMatch', S(27)),
  ord('octetStringOrderingMatch', '2.5.13.18', 'octetStringMatch', S(40)),
  sub('telephoneNumberSubstringsMatch', '2.5.13.21', 'telephoneNumberMatch', S(50)),
  ord('generalizedTimeOrderingMatch', '2.5.13.28', 'generalizedTimeMatch', S(24)),
  sub('caseIgnoreIA5SubstringsMatch', '1.3.6.1.4.1.1466.109.114.3', 'caseIgnoreIA5Match', S(26)),
  sub('caseExactIA5SubstringsMatch', '1.3.6.1.4.1.4203.1.2.1', 'caseExactIA5Match', S(26)),
  ord('uuidOrderingMatch', '1.3.6.1.1.16.3', 'uuidMatch', '1.3.6.1.1.16.1'),
];

/** Every rule of cn=Subschema's matchingRules, equality rules first. */
export const ALL_RULES: readonly MatchingRuleInfo[] = [...MATCHING_RULES, ...DESCRIBED_RULES];

const RULE_KEYS = new Map<string, MatchingRuleInfo>();
for (const r of ALL_RULES) for (const k of [r.name.toLowerCase(), r.oid]) RULE_KEYS.set(k, r);

/** A rule by name (case-insensitive) or numeric OID, as a filter or a definition names it. */
export function ruleInfo(nameOrOid: string): MatchingRuleInfo | undefined {
  return RULE_KEYS.get(nameOrOid.toLowerCase());
}

/** Syntaxes only matching rules use (assertion syntaxes), for cn=Subschema: RFC 4517 §3.3.30. */
export const ASSERTION_SYNTAXES = [{ oid: '1.3.6.1.4.1.1466.115.121.1.58', desc: 'Substring Assertion' }];

/** RFC 4517 §3.3 syntax OIDs and descriptions for the syntaxes we check. */
export const SYNTAXES: Record<SyntaxName, { oid: string; desc: string }> = {
  boolean: { oid: '1.3.6.1.4.1.1466.115.121.1.7', desc: 'Boolean' },
  dn: { oid: '1.3.6.1.4.1.1466.115.121.1.12', desc: 'DN' },
  directoryString: { oid: '1.3.6.1.4.1.1466.115.121.1.15', desc: 'Directory String' },
  generalizedTime: { oid: '1.3.6.1.4.1.1466.115.121.1.24', desc: 'Generalized Time' },
  ia5String: { oid: '1.3.6.1.4.1.1466.115.121.1.26', desc: 'IA5 String' },
  integer: { oid: '1.3.6.1.4.1.1466.115.121.1.27', desc: 'INTEGER' },
  numericString: { oid: '1.3.6.1.4.1.1466.115.121.1.36', desc: 'Numeric String' },
  oid: { oid: '1.3.6.1.4.1.1466.115.121.1.38', desc: 'OID' },
  octetString: { oid: '1.3.6.1.4.1.1466.115.121.1.40', desc: 'Octet String' },
  printableString: { oid: '1.3.6.1.4.1.1466.115.121.1.44', desc: 'Printable String' },
  telephoneNumber: { oid: '1.3.6.1.4.1.1466.115.121.1.50', desc: 'Telephone Number' },
  uuid: { oid: '1.3.6.1.1.16.1', desc: 'UUID' },
  nisNetgroupTriple: { oid: '1.3.6.1.1.1.0.0', desc: 'RFC2307 NIS Netgroup Triple' },
  bootParameter: { oid: '1.3.6.1.1.1.0.1', desc: 'RFC2307 Boot Parameter' },
};

/**
 * Syntax check of one value (RFC 4517 §3.3). DN syntax is checked by the
 * registry with the DN parser; here it only has to be a string.
 */
export function checkSyntax(syntax: SyntaxName, v: string): boolean {
  switch (syntax) {
    case 'directoryString':
      return v.length > 0; // RFC 4517 §3.3.6: a Directory String is never empty
    case 'ia5String':
      return isIA5(v);
    case 'printableString':
      return /^[A-Za-z0-9'()+,\-./:? =]+$/.test(v);
    case 'integer':
      return /^-?(0|[1-9]\d*)$/.test(v);
    case 'boolean':
      return v === 'TRUE' || v === 'FALSE';
    case 'telephoneNumber':
      return /^[\x20-\x7e]+$/.test(v);
    case 'generalizedTime':
      return generalizedTime(v) !== undefined;
    case 'oid':
      return /^([0-9]+(\.[0-9]+)+|[A-Za-z][A-Za-z0-9-]*)$/.test(v);
    case 'numericString':
      return /^[0-9 ]+$/.test(v);
    case 'uuid':
      return NORMALIZERS.uuidMatch(v) !== undefined;
    // RFC 2307 §2.4, read as slapd reads it (every value slapd takes is taken; parts may be empty,
    // names may hold dots): "(" hostname "," username "," domainname ")" and key "=" server ":" path.
    case 'nisNetgroupTriple':
      return /^\( *[^\s,()]* *, *[^\s,()]* *, *[^\s,()]* *\)$/.test(v) && isIA5(v);
    case 'bootParameter':
      return /^[^\s=:]*=[^\s=:]*:[\x20-\x7e]*$/.test(v) && isIA5(v);
    case 'dn':
    case 'octetString':
      return true;
  }
}

/** American Soundex of a word of letters a-z (Knuth, TAOCP vol. 3 §6): first letter and three digits. */
function soundex(w: string): string {
  const codes: Record<string, string> = {
    b: '1', f: '1', p: '1', v: '1', c: '2', g: '2', j: '2', k: '2', q: '2', s: '2', x: '2', z: '2',
    d: '3', t: '3', l: '4', m: '5', n: '5', r: '6',
  };
  let out = w[0];
  let prev = codes[w[0]] ?? '';
  for (let i = 1; i < w.length && out.length < 4; i++) {
    const c = w[i];
    if (c === 'h' || c === 'w') continue; // do not separate equal codes
    const code = codes[c] ?? '';
    if (code && code !== prev) out += code;
    prev = code; // a vowel separates equal codes
  }
  return out.padEnd(4, '0');
}

/**
 * Keys of the approximate matching rule (RFC 4511 §4.5.1.7.6 leaves the rule
 * to the server): the value is folded (NFKD without combining marks, case)
 * and cut into words; a word of letters a-z is keyed by its Soundex code,
 * any other word by itself. An assertion matches a value when its keys occur
 * among the value's keys in order, in the manner of OpenLDAP's approx.c
 * (there with its own phonetic code).
 */
export function approximateKeys(v: string): string[] {
  const folded = v.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
  return folded.split(/[^\p{L}\p{N}]+/u).filter(Boolean).map((w) => (/^[a-z]+$/.test(w) ? soundex(w) : w));
}

/** True when the assertion's keys occur, in order, among the value's (see approximateKeys). */
export function approximateMatch(valueKeys: readonly string[], assertionKeys: readonly string[]): boolean {
  let i = 0;
  for (const k of assertionKeys) {
    while (i < valueKeys.length && valueKeys[i] !== k) i++;
    if (i === valueKeys.length) return false;
    i++;
  }
  return true;
}
