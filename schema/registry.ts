/**
 * The schema registry: links the definitions of `schema/definitions` into
 * attribute types and object classes with their inheritance resolved, and
 * checks entries against them (RFC 4512 §2.4 object classes, §2.5 attribute
 * descriptions, §4.1 definitions).
 */
import type { AttributeTypeDef, MatchingRuleName, ObjectClassDef, SchemaModule, SyntaxName } from './types';
import { ALL_RULES, ASSERTION_SYNTAXES, checkSyntax, normalizerFor, SYNTAXES, type MatchingRuleInfo, type Normalizer } from './matching';
import { DnSyntaxError, escapeDnValue, parseDn, type Dn, type Rdn } from './dn';

/** A resolved attribute type. */
export interface AttributeType {
  readonly oid: string;
  /** Canonical spelling (the first NAME). */
  readonly name: string;
  /** Lower-case canonical name: the key used in normalised DNs and indexes. */
  readonly lname: string;
  readonly names: string[];
  readonly def: AttributeTypeDef;
  readonly sup: AttributeType | undefined;
  /** Effective equality rule (own or inherited); undefined means no equality matching. */
  readonly equality: MatchingRuleName | undefined;
  /** Effective ordering and substrings rules (own or inherited, RFC 4512 §4.1.2), by name. */
  readonly ordering: string | undefined;
  readonly substr: string | undefined;
  readonly syntax: SyntaxName;
  readonly singleValue: boolean;
  readonly noUserModification: boolean;
  /** True for every usage but userApplications (RFC 4512 §4.1.2). */
  readonly operational: boolean;
  /** Normal form under the equality rule; undefined when the value is not valid for it. */
  readonly normalize: Normalizer;
  /** Types whose SUP chain reaches this one (not including itself). */
  readonly subtypes: AttributeType[];
}

/** A resolved object class. */
export interface ObjectClass {
  readonly oid: string;
  readonly name: string;
  readonly lname: string;
  readonly def: ObjectClassDef;
  readonly kind: 'abstract' | 'structural' | 'auxiliary';
  readonly sup: ObjectClass[];
  /** This class and all its superclasses. */
  readonly ancestors: ReadonlySet<ObjectClass>;
  /** MUST attributes, inherited ones included. */
  readonly must: ReadonlySet<AttributeType>;
  /** MAY attributes, inherited ones included. */
  readonly may: ReadonlySet<AttributeType>;
}

/** Kinds of schema violation, named after the LDAP result they map to (RFC 4511 Appendix A). */
export type SchemaErrorKind =
  | 'undefinedAttributeType'
  | 'objectClassViolation'
  | 'invalidAttributeSyntax'
  | 'constraintViolation'
  | 'attributeOrValueExists'
  | 'namingViolation';

/** A write that the schema refuses. */
export class SchemaError extends Error {
  constructor(readonly kind: SchemaErrorKind, message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

/** Attribute values keyed by resolved type, as validate() sees an entry. */
export type TypedAttrs = Map<AttributeType, string[]>;

/** The linked schema. Immutable after construction. */
export class Schema {
  private readonly attrs = new Map<string, AttributeType>();
  /** `attr`'s answers for every name and OID as spelled in the schema, and lower-cased: no case folding per lookup. */
  private readonly attrsBySpelling = new Map<string, AttributeType>();
  private readonly classes = new Map<string, ObjectClass>();
  readonly attributeTypes: AttributeType[] = [];
  readonly objectClasses: ObjectClass[] = [];
  readonly objectClassType: AttributeType;

  constructor(modules: SchemaModule[]) {
    const atDefs = modules.flatMap((m) => m.attributeTypes);
    const ocDefs = modules.flatMap((m) => m.objectClasses);
    const byKey = new Map<string, AttributeTypeDef>();
    for (const d of atDefs) for (const k of [d.oid, ...d.names]) byKey.set(k.toLowerCase(), d);

    const resolving = new Set<AttributeTypeDef>();
    const resolve = (d: AttributeTypeDef): AttributeType => {
      const have = this.attrs.get(d.oid);
      if (have) return have;
      if (resolving.has(d)) throw new Error(`schema: SUP cycle at ${d.names[0]}`);
      resolving.add(d);
      let sup: AttributeType | undefined;
      if (d.sup) {
        const sd = byKey.get(d.sup.toLowerCase());
        if (!sd) throw new Error(`schema: ${d.names[0]} has unknown SUP ${d.sup}`);
        sup = resolve(sd);
      }
      const equality = d.equality ?? sup?.equality;
      const syntax = d.syntax ?? sup?.syntax ?? 'directoryString';
      const at: AttributeType = {
        oid: d.oid,
        name: d.names[0],
        lname: d.names[0].toLowerCase(),
        names: d.names,
        def: d,
        sup,
        equality,
        ordering: d.ordering ?? sup?.ordering,
        substr: d.substr ?? sup?.substr,
        syntax,
        singleValue: !!d.singleValue,
        noUserModification: !!d.noUserModification,
        operational: (d.usage ?? 'userApplications') !== 'userApplications',
        normalize: equality === 'distinguishedNameMatch' ? (v) => this.tryNormalizeDn(v) : normalizerFor(equality ?? 'octetStringMatch'),
        subtypes: [],
      };
      this.attrs.set(d.oid, at);
      for (const k of [d.oid, ...d.names]) this.attrs.set(k.toLowerCase(), at);
      this.attributeTypes.push(at);
      resolving.delete(d);
      return at;
    };
    for (const d of atDefs) resolve(d);
    for (const at of this.attributeTypes) {
      for (const k of [at.oid, ...at.names]) {
        const found = this.attrs.get(k.toLowerCase())!;
        this.attrsBySpelling.set(k, found).set(k.toLowerCase(), found);
      }
    }
    for (const at of this.attributeTypes) {
      for (let s = at.sup; s; s = s.sup) s.subtypes.push(at);
    }

    const ocByKey = new Map<string, ObjectClassDef>();
    for (const d of ocDefs) for (const k of [d.oid, ...d.names]) ocByKey.set(k.toLowerCase(), d);
    const resolveOc = (d: ObjectClassDef): ObjectClass => {
      const have = this.classes.get(d.oid);
      if (have) return have;
      const sup = (d.sup ?? []).map((s) => {
        const sd = ocByKey.get(s.toLowerCase());
        if (!sd) throw new Error(`schema: class ${d.names[0]} has unknown SUP ${s}`);
        return resolveOc(sd);
      });
      const ref = (n: string) => {
        const a = this.attrs.get(n.toLowerCase());
        if (!a) throw new Error(`schema: class ${d.names[0]} names unknown attribute ${n}`);
        return a;
      };
      const ancestors = new Set<ObjectClass>();
      const must = new Set<AttributeType>((d.must ?? []).map(ref));
      const may = new Set<AttributeType>((d.may ?? []).map(ref));
      for (const s of sup) {
        for (const a of s.ancestors) ancestors.add(a);
        for (const a of s.must) must.add(a);
        for (const a of s.may) may.add(a);
      }
      const oc: ObjectClass = {
        oid: d.oid,
        name: d.names[0],
        lname: d.names[0].toLowerCase(),
        def: d,
        kind: d.kind,
        sup,
        ancestors,
        must,
        may,
      };
      ancestors.add(oc);
      this.classes.set(d.oid, oc);
      for (const k of [d.oid, ...d.names]) this.classes.set(k.toLowerCase(), oc);
      this.objectClasses.push(oc);
      return oc;
    };
    for (const d of ocDefs) resolveOc(d);
    const oc = this.attr('objectClass');
    if (!oc) throw new Error('schema: objectClass is not defined');
    this.objectClassType = oc;
  }

  /**
   * The attribute type for a name or OID (case-insensitive). The `;binary`
   * transfer option (RFC 4522) is accepted and ignored; any other option makes
   * the description unknown.
   */
  attr(desc: string): AttributeType | undefined {
    const known = this.attrsBySpelling.get(desc);
    if (known) return known;
    let k = desc.toLowerCase();
    if (k.startsWith('oid.')) k = k.slice(4);
    const semi = k.indexOf(';');
    if (semi >= 0) {
      if (k.slice(semi) !== ';binary') return undefined;
      k = k.slice(0, semi);
    }
    return this.attrs.get(k);
  }

  /** The object class for a name or OID (case-insensitive). */
  objectClass(name: string): ObjectClass | undefined {
    return this.classes.get(name.toLowerCase());
  }

  /**
   * Normalised string form of a DN: types as lower-case canonical names,
   * values in their equality rule's normal form, multi-valued RDNs sorted.
   * Two DNs name the same entry exactly when their normal forms are equal
   * (distinguishedNameMatch, RFC 4517 §4.2.15). Throws DnSyntaxError for a
   * bad DN or an unknown attribute type in it.
   */
  normalizeDn(dn: Dn | string): string {
    const parsed = typeof dn === 'string' ? parseDn(dn) : dn;
    return parsed.map((rdn) => this.normalizeRdn(rdn, typeof dn === 'string' ? dn : '')).join(',');
  }

  /** Normal form of one RDN (see normalizeDn). */
  normalizeRdn(rdn: Rdn, context = ''): string {
    const parts = rdn.map((ava) => {
      const at = this.attr(ava.type);
      if (!at) throw new DnSyntaxError(context || ava.type, `unknown attribute type '${ava.type}'`);
      const norm = at.equality === 'distinguishedNameMatch' ? ava.value.toLowerCase() : at.normalize(ava.value);
      if (norm === undefined) throw new DnSyntaxError(context || ava.value, `invalid value for ${at.name}`);
      return `${at.lname}=${escapeDnValue(norm)}`;
    });
    if (parts.length > 1) parts.sort();
    return parts.join('+');
  }

  /** The normal form of a DN-syntax value under distinguishedNameMatch, undefined when it is not a DN. */
  normalizeDnValue(v: string): string | undefined {
    return this.tryNormalizeDn(v);
  }

  private tryNormalizeDn(v: string): string | undefined {
    try {
      return this.normalizeDn(v);
    } catch {
      return undefined;
    }
  }

  /**
   * RFC 4511 §4.7: the entry an add creates is the request's attributes
   * "along with those from the RDN". Returns `attrs` with every RDN value
   * they lack (under the attribute's equality rule) added, as slapd does; a
   * single-valued attribute that holds another value, or an unknown type, is
   * left as it is, for validate to refuse (namingViolation).
   */
  withRdnValues(attrs: TypedAttrs, rdn: Rdn): TypedAttrs {
    const out = new Map(attrs);
    for (const ava of rdn) {
      const at = this.attr(ava.type);
      const norm = at?.normalize(ava.value);
      if (!at || norm === undefined) continue;
      const have = out.get(at) ?? [];
      if (have.some((v) => at.normalize(v) === norm) || (at.singleValue && have.length)) continue;
      out.set(at, [...have, ava.value]);
    }
    return out;
  }

  /**
   * Checks a complete entry (RFC 4512 §2.4, §2.3.1). `rdn` is the entry's
   * RDN, whose values must be present. With `relax`, NO-USER-MODIFICATION
   * attributes are allowed (server-internal writes and LDIF import).
   * Throws SchemaError.
   */
  validate(attrs: TypedAttrs, rdn: Rdn, opts: { relax?: boolean } = {}): void {
    const ocValues = attrs.get(this.objectClassType);
    if (!ocValues || ocValues.length === 0) throw new SchemaError('objectClassViolation', 'no objectClass attribute');
    const classes = new Set<ObjectClass>();
    for (const v of ocValues) {
      const oc = this.objectClass(v);
      if (!oc) throw new SchemaError('invalidAttributeSyntax', `objectClass: value '${v}' is not a known object class`);
      for (const a of oc.ancestors) classes.add(a);
    }
    const structural = [...classes].filter((c) => c.kind === 'structural');
    if (structural.length === 0) throw new SchemaError('objectClassViolation', 'no structural object class provided');
    // RFC 4512 §2.4.2: exactly one structural class chain.
    const leaves = structural.filter((c) => !structural.some((o) => o !== c && o.ancestors.has(c)));
    if (leaves.length > 1) {
      throw new SchemaError('objectClassViolation', `invalid structural object class chain (${leaves.map((c) => c.name).join('/')})`);
    }
    const extensible = [...classes].some((c) => c.lname === 'extensibleobject');
    const allowed = new Set<AttributeType>();
    for (const c of classes) {
      for (const a of c.must) {
        if (!attrs.has(a)) throw new SchemaError('objectClassViolation', `object class '${c.name}' requires attribute '${a.name}'`);
        allowed.add(a);
      }
      for (const a of c.may) allowed.add(a);
    }
    for (const [at, values] of attrs) {
      if (at.noUserModification && !opts.relax) {
        throw new SchemaError('constraintViolation', `${at.name}: no user modification allowed`);
      }
      if (!at.operational && !extensible && !allowed.has(at) && at !== this.objectClassType) {
        throw new SchemaError('objectClassViolation', `attribute '${at.name}' not allowed`);
      }
      this.checkValues(at, values);
    }
    for (const ava of rdn) {
      const at = this.attr(ava.type);
      const values = at && attrs.get(at);
      const norm = at?.normalize(ava.value);
      if (!at || !values || norm === undefined || !values.some((v) => at.normalize(v) === norm)) {
        throw new SchemaError('namingViolation', `value of naming attribute '${ava.type}' is not present in entry`);
      }
    }
  }

  /** Checks one attribute's value list: non-empty, syntax, single-value, no duplicates. Throws SchemaError. */
  checkValues(at: AttributeType, values: string[]): void {
    if (values.length === 0) throw new SchemaError('invalidAttributeSyntax', `${at.name}: no values`);
    if (at.singleValue && values.length > 1) {
      throw new SchemaError('constraintViolation', `${at.name}: single-valued attribute has multiple values`);
    }
    const seen = new Set<string>();
    values.forEach((v, i) => {
      const ok = at.syntax === 'dn' ? at.normalize(v) !== undefined : checkSyntax(at.syntax, v);
      if (!ok) throw new SchemaError('invalidAttributeSyntax', `${at.name}: value #${i} invalid per syntax`);
      const norm = at.normalize(v);
      if (norm === undefined) throw new SchemaError('invalidAttributeSyntax', `${at.name}: value #${i} invalid per syntax`);
      if (seen.has(norm)) throw new SchemaError('attributeOrValueExists', `${at.name}: value #${i} provided more than once`);
      seen.add(norm);
    });
  }

  /**
   * True when an extensible match under `rule` applies to values of `at`
   * (RFC 4512 §4.1.4): the type names the rule as its EQUALITY, ORDERING or
   * SUBSTR (own or inherited), or its values have the syntax the rule
   * compares (MatchingRuleInfo.valueSyntax).
   */
  ruleApplies(rule: MatchingRuleInfo, at: AttributeType): boolean {
    return at.equality === rule.name || at.ordering === rule.name || at.substr === rule.name || SYNTAXES[at.syntax].oid === rule.valueSyntax;
  }

  /**
   * The matching rule uses (RFC 4512 §4.1.4): for every rule we describe,
   * the attribute types it applies to (ruleApplies), in definition order;
   * rules that apply to none are left out, as APPLIES cannot be empty.
   */
  ruleUses(): { rule: MatchingRuleInfo; applies: AttributeType[] }[] {
    return ALL_RULES.map((rule) => ({ rule, applies: this.attributeTypes.filter((at) => this.ruleApplies(rule, at)) }))
      .filter((u) => u.applies.length > 0);
  }

  /** RFC 4512 §4.1 descriptions for the cn=Subschema subentry. */
  descriptions(): { attributeTypes: string[]; objectClasses: string[]; matchingRules: string[]; matchingRuleUse: string[]; ldapSyntaxes: string[] } {
    const attributeTypes = this.attributeTypes.map((a) => `( ${attributeTypeClauses(a.def).join(' ')} )`);
    const objectClasses = this.objectClasses.map((c) => `( ${objectClassClauses(c.def).join(' ')} )`);
    const matchingRules = ALL_RULES.map((r) => `( ${r.oid} NAME '${r.name}' SYNTAX ${r.syntax} )`);
    // RFC 4512 §4.1.4: APPLIES names the attribute types, as slapd does, by their first name.
    const matchingRuleUse = this.ruleUses().map((u) => `( ${u.rule.oid} NAME '${u.rule.name}' APPLIES ${oidlist(u.applies.map((a) => a.name))} )`);
    const ldapSyntaxes = [...Object.values(SYNTAXES), ...ASSERTION_SYNTAXES].map((s) => `( ${s.oid} DESC '${s.desc}' )`);
    return { attributeTypes, objectClasses, matchingRules, matchingRuleUse, ldapSyntaxes };
  }
}

const qd = (s: string) => `'${s.replace(/\\/g, '\\5C').replace(/'/g, '\\27')}'`;
const qdescrs = (names: string[]) => (names.length === 1 ? qd(names[0]) : `( ${names.map(qd).join(' ')} )`);
const oidlist = (xs: string[]) => (xs.length === 1 ? xs[0] : `( ${xs.join(' $ ')} )`);

/**
 * The clauses of an AttributeTypeDescription (RFC 4512 §4.1.2), in the
 * order the grammar gives them, without the enclosing parentheses: the OID,
 * then `NAME ...`, `DESC ...`, ... `USAGE ...` as the definition has them.
 * `( ${clauses.join(' ')} )` is the description.
 */
export function attributeTypeClauses(d: AttributeTypeDef): string[] {
  const out = [d.oid, `NAME ${qdescrs(d.names)}`];
  if (d.desc) out.push(`DESC ${qd(d.desc)}`);
  if (d.obsolete) out.push('OBSOLETE');
  if (d.sup) out.push(`SUP ${d.sup}`);
  if (d.equality) out.push(`EQUALITY ${d.equality}`);
  if (d.ordering) out.push(`ORDERING ${d.ordering}`);
  if (d.substr) out.push(`SUBSTR ${d.substr}`);
  if (d.syntax) out.push(`SYNTAX ${SYNTAXES[d.syntax].oid}${d.syntaxLen ? `{${d.syntaxLen}}` : ''}`);
  if (d.singleValue) out.push('SINGLE-VALUE');
  if (d.noUserModification) out.push('NO-USER-MODIFICATION');
  if (d.usage && d.usage !== 'userApplications') out.push(`USAGE ${d.usage}`);
  return out;
}

/** The clauses of an ObjectClassDescription (RFC 4512 §4.1.1), as attributeTypeClauses gives them. */
export function objectClassClauses(d: ObjectClassDef): string[] {
  const out = [d.oid, `NAME ${qdescrs(d.names)}`];
  if (d.desc) out.push(`DESC ${qd(d.desc)}`);
  if (d.obsolete) out.push('OBSOLETE');
  if (d.sup && d.sup.length) out.push(`SUP ${oidlist(d.sup)}`);
  out.push(d.kind.toUpperCase());
  if (d.must && d.must.length) out.push(`MUST ${oidlist(d.must)}`);
  if (d.may && d.may.length) out.push(`MAY ${oidlist(d.may)}`);
  return out;
}
