/**
 * The LDAP schema as data (RFC 4512 §4.1): attribute types, object classes and
 * the matching rules and syntaxes they name. Definitions live in
 * `schema/definitions/*.ts`; `schema/registry.ts` links them.
 */

/** Matching rules we implement (RFC 4517 §4.2). */
export type MatchingRuleName =
  | 'caseIgnoreMatch'
  | 'caseExactMatch'
  | 'caseIgnoreIA5Match'
  | 'caseExactIA5Match'
  | 'distinguishedNameMatch'
  | 'integerMatch'
  | 'booleanMatch'
  | 'octetStringMatch'
  | 'telephoneNumberMatch'
  | 'generalizedTimeMatch'
  | 'objectIdentifierMatch'
  | 'numericStringMatch'
  | 'uuidMatch';

/** Syntaxes we check on write (RFC 4517 §3.3), by short name. */
export type SyntaxName =
  | 'directoryString'
  | 'ia5String'
  | 'printableString'
  | 'dn'
  | 'integer'
  | 'boolean'
  | 'octetString'
  | 'telephoneNumber'
  | 'generalizedTime'
  | 'oid'
  | 'numericString'
  | 'uuid'
  | 'nisNetgroupTriple'
  | 'bootParameter';

/** One attribute type (RFC 4512 §4.1.2). */
export interface AttributeTypeDef {
  oid: string;
  /** First name is the canonical spelling used in stored entries and responses. */
  names: string[];
  desc?: string;
  sup?: string;
  /** Equality rule; inherited from `sup` when absent. */
  equality?: MatchingRuleName;
  /** Ordering rule, when the type has one (caseIgnoreOrderingMatch etc. map to the equality normaliser). */
  ordering?: string;
  /** Substrings rule, when the type has one. */
  substr?: string;
  syntax?: SyntaxName;
  /** Upper bound from the syntax `{n}` suffix, informational. */
  syntaxLen?: number;
  singleValue?: boolean;
  /** NO-USER-MODIFICATION: only the server writes it. */
  noUserModification?: boolean;
  usage?: 'userApplications' | 'directoryOperation' | 'distributedOperation' | 'dSAOperation';
  obsolete?: boolean;
}

/** One object class (RFC 4512 §4.1.1). */
export interface ObjectClassDef {
  oid: string;
  names: string[];
  desc?: string;
  sup?: string[];
  kind: 'abstract' | 'structural' | 'auxiliary';
  must?: string[];
  may?: string[];
  obsolete?: boolean;
}

/** A named group of definitions (a schema file). */
export interface SchemaModule {
  name: string;
  attributeTypes: AttributeTypeDef[];
  objectClasses: ObjectClassDef[];
}
