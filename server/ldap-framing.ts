/**
 * LDAP PDU framing, shared by the LDAP endpoint (in front of its request
 * decoders, server/ldap/search-decode.ts and request-decode.ts) and the
 * directory client of remote transfer units (server/directory-client).
 *
 * No byte reaches a decoder unless it belongs to exactly one complete
 * LDAPMessage whose BER structure, and RFC 4511 shape at the level of tags,
 * we have walked and found sound; the decoders are then straight walks that
 * trust lengths and tags. The hostile cases this was built against came from
 * ldapjs, which once parsed these PDUs and trusted its input: a 4-octet
 * length of 0xffffffff read as -1 and killed the process, an inner length
 * that overran its parent made `@ldapjs/messages` spin forever, a deeply
 * nested filter overflowed the stack, a declared 2 GiB PDU was buffered and
 * parsed. The checks:
 *
 *  - {@link PduFramer} cuts the connection's byte stream into PDUs, rejecting
 *    a bad header (wrong tag, indefinite or over-long length, declared size
 *    over the limit) from the header alone, before any body is buffered;
 *  - {@link validateBer} walks one element tree iteratively, in O(n) with no
 *    per-element allocation, checking that every child exactly fills its
 *    parent and that nesting stays within the depth limit;
 *  - {@link validateLdapMessage} adds the RFC 4511 §4 schema at the level of
 *    tags (envelope, every operation, filters, controls): sound BER with a
 *    primitive where a SEQUENCE belongs is refused here, before a decoder
 *    would step into contents never validated.
 *
 * When framing fails the connection is beyond repair (we can no longer tell
 * where the next PDU starts): the caller sends {@link noticeOfDisconnection}
 * and closes the socket (RFC 4511 §4.4.1, §5.3).
 */

import { integerContent, tlv } from './ber';

/** Limits applied by the framer; both come from the `ldap` config section. */
export interface FramingLimits {
  /** Largest PDU accepted, in bytes, counting the outer tag and length octets. */
  maxPdu: number;
  /**
   * Deepest nesting of constructed elements accepted, the outer LDAPMessage
   * SEQUENCE counting as 1. Primitive elements do not add a level.
   */
  maxDepth: number;
}

/** Why a byte stream or PDU was rejected. */
export type FramingErrorReason =
  | 'too-large'
  | 'bad-tag'
  | 'bad-length'
  | 'indefinite-length'
  | 'too-deep'
  | 'structure';

/**
 * A framing or BER validation failure. `reason` is stable and meant for
 * metrics and logs; `message` is human-readable detail and may change.
 * After a framer has thrown one of these the connection must be closed.
 */
export class FramingError extends Error {
  /** The class of failure. */
  readonly reason: FramingErrorReason;

  constructor(reason: FramingErrorReason, message: string) {
    super(message);
    this.name = 'FramingError';
    this.reason = reason;
  }
}

// Universal tag numbers the walker treats specially.
const UNIVERSAL_SEQUENCE = 0x10;
const UNIVERSAL_SET = 0x11;
const TAG_SEQUENCE = 0x30; // universal, constructed, 16
const TAG_INTEGER = 0x02;

/*
 * Stack of parent end offsets for the BER walk, shared between calls so that
 * validation allocates nothing per PDU. Validation is synchronous and never
 * re-entered, so module-level stacks are safe. Float64Array because an
 * offset may exceed the small-integer range.
 */
let endStack = new Float64Array(64);

/**
 * Validates one complete BER element tree occupying all of `buf`.
 *
 * Contract:
 *  - `buf` must hold exactly one element: its length octets must account for
 *    every byte after the header, with no trailing bytes (else 'structure');
 *  - definite lengths only — the indefinite form (length octet 0x80) is
 *    forbidden by RFC 4511 §5.1 ('indefinite-length'); long-form lengths may
 *    be non-minimal (BER, X.690 §8.1.3.5) but use at most 4 length octets
 *    ('bad-length'; 0xff, reserved by X.690 §8.1.3.5 c, falls under this);
 *  - single-octet tags only: LDAP never uses high tag numbers (low five bits
 *    all ones) and universal tag 0 is end-of-contents, meaningless in
 *    definite form ('bad-tag');
 *  - every constructed element's children exactly fill its contents: a child
 *    whose header or contents run past its parent's end is 'structure';
 *  - universal SEQUENCE/SET must be constructed and every other universal
 *    type primitive (RFC 4511 §5.1: OCTET STRING values are primitive only;
 *    INTEGER, ENUMERATED, BOOLEAN, NULL are always primitive) ('structure');
 *  - context, application and private tags are walked when their constructed
 *    bit is set and skipped when it is not;
 *  - at most `maxDepth` constructed elements nest, the outermost counting as
 *    1 ('too-deep').
 *
 * This checks BER only, not what LDAP puts where; see
 * {@link validateLdapMessage} for that. Runs iteratively in O(buf.length) and
 * allocates nothing (beyond growing a shared offset stack the first time a
 * large `maxDepth` is used). Returns normally when the tree is sound; throws
 * {@link FramingError} otherwise.
 */
export function validateBer(buf: Buffer, maxDepth: number): void {
  berWalk(buf, 0, buf.length, maxDepth);
}

/** validateBer over buf[start, end). */
function berWalk(buf: Buffer, start: number, end: number, maxDepth: number): void {
  if (!(maxDepth >= 0)) maxDepth = 0; // NaN or negative: nothing constructed allowed
  if (end <= start) {
    throw new FramingError('structure', 'empty BER element');
  }
  // Each constructed level needs at least 2 header octets, so the stack never
  // needs more entries than this, whatever maxDepth says.
  const stackNeed = Math.min(maxDepth, ((end - start) >>> 1) + 1);
  if (stackNeed > endStack.length) {
    endStack = new Float64Array(stackNeed);
  }
  const ends = endStack;

  let p = start; // start of the element being examined
  let limit = end; // end of the innermost open constructed element
  let depth = 0; // number of open constructed elements

  for (;;) {
    // Tag octet (X.690 §8.1.2).
    const tag = buf[p];
    if ((tag & 0x1f) === 0x1f) {
      throw new FramingError('bad-tag', `high-tag-number form at offset ${p} (LDAP uses single-octet tags)`);
    }
    const universal = (tag & 0xc0) === 0;
    const number = tag & 0x1f;
    const constructed = (tag & 0x20) !== 0;
    if (universal && number === 0) {
      throw new FramingError('bad-tag', `end-of-contents tag at offset ${p} (definite lengths only, RFC 4511 §5.1)`);
    }
    // Length octets (X.690 §8.1.3).
    if (p + 1 >= limit) {
      throw new FramingError('structure', `element header at offset ${p} truncated by its parent`);
    }
    const lb = buf[p + 1];
    let q = p + 2;
    let len: number;
    if (lb < 0x80) {
      len = lb;
    } else if (lb === 0x80) {
      throw new FramingError('indefinite-length', `indefinite length at offset ${p} (RFC 4511 §5.1)`);
    } else {
      const n = lb & 0x7f;
      if (n > 4) {
        throw new FramingError('bad-length', `${n} length octets at offset ${p} (at most 4 accepted)`);
      }
      if (q + n > limit) {
        throw new FramingError('structure', `length octets at offset ${p} truncated by the parent`);
      }
      len = 0;
      for (let i = 0; i < n; i++) {
        len = len * 256 + buf[q++]; // multiply, not shift: 4 octets can exceed 2^31
      }
    }
    const contentEnd = q + len;
    if (contentEnd > limit) {
      throw new FramingError(
        'structure',
        `element at offset ${p} declares ${len} content bytes but its parent has ${limit - q} left`,
      );
    }
    if (universal) {
      const setOrSeq = number === UNIVERSAL_SEQUENCE || number === UNIVERSAL_SET;
      if (setOrSeq !== constructed) {
        throw new FramingError(
          'structure',
          setOrSeq
            ? `primitive SEQUENCE/SET at offset ${p}`
            : `constructed encoding of universal type ${number} at offset ${p} (RFC 4511 §5.1)`,
        );
      }
    }

    if (constructed) {
      if (depth >= maxDepth) {
        throw new FramingError('too-deep', `nesting deeper than ${maxDepth} at offset ${p}`);
      }
      ends[depth++] = limit;
      limit = contentEnd;
      p = q;
    } else {
      p = contentEnd;
    }
    // Close every constructed element the last child exactly filled.
    while (depth > 0 && p === limit) {
      limit = ends[--depth];
    }
    if (depth === 0) break;
  }

  if (p !== end) {
    throw new FramingError('structure', `${end - p} trailing bytes after the element`);
  }
}

/* ------------------------------------------------------------------------ *
 * LDAP schema, at the level of tags.
 *
 * Sound BER is not enough: a decoder that steps into a primitive element
 * where it expects a SEQUENCE (say a SearchRequest whose attribute list is
 * `04 02 04 7f`) parses the primitive's unvalidated contents as BER (ldapjs
 * looped forever on this one). So every element a decoder reads is checked
 * to carry the tag RFC 4511 §4 puts there, and components a decoder would
 * misread (trailing extras inside an operation, a Control with extra fields)
 * are refused. The tables below are the RFC 4511 ASN.1 reduced to tags.
 * ------------------------------------------------------------------------ */

/** Child kind: a primitive leaf, not descended into. */
const LEAF = -1;
/** Child kind: any element, skipped whole (already BER-validated). */
const SKIP = -2;

/** One position in a constructed element's content: which tags may appear there and how often. */
interface Item {
  /** Allowed tags (empty with anyTag). */
  readonly tags: readonly number[];
  /** Kind of the child for the tag at the same index: a Kind index, LEAF or SKIP. */
  readonly kinds: readonly number[];
  readonly min: number;
  readonly max: number;
  /** Matches any tag (kind SKIP). */
  readonly anyTag: boolean;
}

interface Kind {
  readonly name: string;
  readonly items: Item[];
  /** Fewest children in total (for SIZE (1..MAX) lists whose items are all optional). */
  readonly minChildren: number;
}

const KINDS: Kind[] = [];

function kind(name: string, minChildren = 0): number {
  KINDS.push({ name, items: [], minChildren });
  return KINDS.length - 1;
}

function item(min: number, max: number, ...pairs: (readonly [number, number])[]): Item {
  return { tags: pairs.map((p) => p[0]), kinds: pairs.map((p) => p[1]), min, max, anyTag: false };
}

function define(k: number, ...items: Item[]): void {
  KINDS[k].items.push(...items);
}

const MANY = Number.MAX_SAFE_INTEGER;
const leaf = (tag: number) => [tag, LEAF] as const;
const one = (tag: number) => item(1, 1, leaf(tag));
const opt = (tag: number) => item(0, 1, leaf(tag));

// Kinds (declared first so the tables can refer to each other).
const K_ROOT = kind('PDU');
const K_MESSAGE = kind('LDAPMessage');
const K_CONTROLS = kind('Controls');
const K_CONTROL = kind('Control');
const K_BIND_REQ = kind('BindRequest');
const K_SASL = kind('SaslCredentials');
const K_SEARCH_REQ = kind('SearchRequest');
const K_AND_OR = kind('and/or Filter');
const K_NOT = kind('not Filter');
const K_AVA = kind('AttributeValueAssertion');
const K_SUBSTR = kind('SubstringFilter');
const K_SUBSTRINGS = kind('substrings', 1);
const K_MATCHING_RULE = kind('MatchingRuleAssertion');
const K_ATTR_SELECTION = kind('AttributeSelection');
const K_MODIFY_REQ = kind('ModifyRequest');
const K_CHANGES = kind('changes');
const K_CHANGE = kind('change');
const K_PARTIAL_ATTR = kind('PartialAttribute');
const K_VALUES = kind('vals');
const K_ADD_REQ = kind('AddRequest');
const K_ATTR_LIST = kind('AttributeList');
const K_MODDN_REQ = kind('ModifyDNRequest');
const K_COMPARE_REQ = kind('CompareRequest');
const K_EXT_REQ = kind('ExtendedRequest');
const K_RESULT = kind('LDAPResult');
const K_BIND_RES = kind('BindResponse');
const K_EXT_RES = kind('ExtendedResponse');
const K_REFERRAL = kind('Referral', 1);
const K_ENTRY = kind('SearchResultEntry');
const K_PARTIAL_ATTR_LIST = kind('PartialAttributeList');
const K_SEARCH_REF = kind('SearchResultReference', 1);
const K_INTERMEDIATE = kind('IntermediateResponse');
const K_VALUE_ROOT_CANCEL = kind('cancel requestValue');
const K_CANCEL = kind('cancelRequestValue');
const K_VALUE_ROOT_PASSWD = kind('passwdModify requestValue');
const K_PASSWD = kind('PasswdModifyRequestValue');

// RFC 4511 §4.5.1.7 Filter.
const FILTER = [
  [0xa0, K_AND_OR], // and [0] SET OF Filter
  [0xa1, K_AND_OR], // or [1] SET OF Filter
  [0xa2, K_NOT], // not [2] Filter
  [0xa3, K_AVA], // equalityMatch [3]
  [0xa4, K_SUBSTR], // substrings [4]
  [0xa5, K_AVA], // greaterOrEqual [5]
  [0xa6, K_AVA], // lessOrEqual [6]
  leaf(0x87), // present [7] AttributeDescription
  [0xa8, K_AVA], // approxMatch [8]
  [0xa9, K_MATCHING_RULE], // extensibleMatch [9]
] as const;

define(K_ROOT, item(1, 1, [TAG_SEQUENCE, K_MESSAGE]));
// §4.1.1 LDAPMessage. Trailing components after the controls are ignored per
// §4 ("ignore trailing SEQUENCE components whose tags they do not
// recognize"); the decoders never read them.
define(
  K_MESSAGE,
  one(TAG_INTEGER), // messageID; range checked separately
  item(
    1,
    1,
    [0x60, K_BIND_REQ],
    [0x61, K_BIND_RES],
    leaf(0x42), // UnbindRequest NULL
    [0x63, K_SEARCH_REQ],
    [0x64, K_ENTRY],
    [0x65, K_RESULT], // SearchResultDone
    [0x73, K_SEARCH_REF],
    [0x66, K_MODIFY_REQ],
    [0x67, K_RESULT],
    [0x68, K_ADD_REQ],
    [0x69, K_RESULT],
    leaf(0x4a), // DelRequest LDAPDN
    [0x6b, K_RESULT],
    [0x6c, K_MODDN_REQ],
    [0x6d, K_RESULT],
    [0x6e, K_COMPARE_REQ],
    [0x6f, K_RESULT],
    leaf(0x50), // AbandonRequest MessageID
    [0x77, K_EXT_REQ],
    [0x78, K_EXT_RES],
    [0x79, K_INTERMEDIATE],
  ),
  item(0, 1, [0xa0, K_CONTROLS]),
  { tags: [], kinds: [], min: 0, max: MANY, anyTag: true },
);
// §4.1.11 Controls / Control. No extra components (a parser could read them as the next Control).
define(K_CONTROLS, item(0, MANY, [TAG_SEQUENCE, K_CONTROL]));
define(K_CONTROL, one(0x04), opt(0x01), opt(0x04));
// §4.2 BindRequest; AuthenticationChoice simple [0] / sasl [3].
define(K_BIND_REQ, one(TAG_INTEGER), one(0x04), item(1, 1, leaf(0x80), [0xa3, K_SASL]));
define(K_SASL, one(0x04), opt(0x04));
// §4.2.2 BindResponse: LDAPResult + serverSaslCreds [7].
define(K_BIND_RES, one(0x0a), one(0x04), one(0x04), item(0, 1, [0xa3, K_REFERRAL]), opt(0x87));
// §4.1.9 LDAPResult (and the responses that are nothing more).
define(K_RESULT, one(0x0a), one(0x04), one(0x04), item(0, 1, [0xa3, K_REFERRAL]));
define(K_REFERRAL, item(1, MANY, leaf(0x04)));
// §4.5.1 SearchRequest.
define(
  K_SEARCH_REQ,
  one(0x04), // baseObject
  one(0x0a), // scope
  one(0x0a), // derefAliases
  one(TAG_INTEGER), // sizeLimit
  one(TAG_INTEGER), // timeLimit
  one(0x01), // typesOnly
  item(1, 1, ...FILTER),
  item(1, 1, [TAG_SEQUENCE, K_ATTR_SELECTION]),
);
// and/or SET SIZE (1..MAX) — the empty forms are RFC 4526's absolute true/false, allowed.
define(K_AND_OR, item(0, MANY, ...FILTER));
define(K_NOT, item(1, 1, ...FILTER));
define(K_AVA, one(0x04), one(0x04));
define(K_SUBSTR, one(0x04), item(1, 1, [TAG_SEQUENCE, K_SUBSTRINGS]));
define(K_SUBSTRINGS, opt(0x80), item(0, MANY, leaf(0x81)), opt(0x82));
define(K_MATCHING_RULE, opt(0x81), opt(0x82), one(0x83), opt(0x84));
define(K_ATTR_SELECTION, item(0, MANY, leaf(0x04)));
// §4.5.2 SearchResultEntry, §4.5.3 SearchResultReference.
define(K_ENTRY, one(0x04), item(1, 1, [TAG_SEQUENCE, K_PARTIAL_ATTR_LIST]));
define(K_PARTIAL_ATTR_LIST, item(0, MANY, [TAG_SEQUENCE, K_PARTIAL_ATTR]));
define(K_PARTIAL_ATTR, one(0x04), item(1, 1, [0x31, K_VALUES]));
define(K_VALUES, item(0, MANY, leaf(0x04)));
define(K_SEARCH_REF, item(1, MANY, leaf(0x04)));
// §4.6 ModifyRequest.
define(K_MODIFY_REQ, one(0x04), item(1, 1, [TAG_SEQUENCE, K_CHANGES]));
define(K_CHANGES, item(0, MANY, [TAG_SEQUENCE, K_CHANGE]));
define(K_CHANGE, one(0x0a), item(1, 1, [TAG_SEQUENCE, K_PARTIAL_ATTR]));
// §4.7 AddRequest.
define(K_ADD_REQ, one(0x04), item(1, 1, [TAG_SEQUENCE, K_ATTR_LIST]));
define(K_ATTR_LIST, item(0, MANY, [TAG_SEQUENCE, K_PARTIAL_ATTR]));
// §4.9 ModifyDNRequest, §4.10 CompareRequest.
define(K_MODDN_REQ, one(0x04), one(0x04), one(0x01), opt(0x80));
define(K_COMPARE_REQ, one(0x04), item(1, 1, [TAG_SEQUENCE, K_AVA]));
// §4.12 ExtendedRequest / ExtendedResponse, §4.13 IntermediateResponse.
define(K_EXT_REQ, one(0x80), opt(0x81));
define(K_EXT_RES, one(0x0a), one(0x04), one(0x04), item(0, 1, [0xa3, K_REFERRAL]), opt(0x8a), opt(0x8b));
define(K_INTERMEDIATE, opt(0x80), opt(0x81));
// requestValues with a BER shape of their own: RFC 3909 cancel and RFC 3062
// password modify (request-decode.ts reads the latter). Exact shapes: nothing
// may follow them.
define(K_VALUE_ROOT_CANCEL, item(1, 1, [TAG_SEQUENCE, K_CANCEL]));
define(K_CANCEL, one(TAG_INTEGER));
define(K_VALUE_ROOT_PASSWD, item(1, 1, [TAG_SEQUENCE, K_PASSWD]));
define(K_PASSWD, opt(0x80), opt(0x81), opt(0x82));

// Table self-check at load: a LEAF must be primitive and a kind constructed,
// or the walker would step into contents BER validation never looked at.
for (const k of KINDS) {
  for (const it of k.items) {
    it.tags.forEach((t, i) => {
      if ((it.kinds[i] === LEAF) !== ((t & 0x20) === 0)) {
        throw new Error(`framing schema: tag 0x${t.toString(16)} in ${k.name} has the wrong kind`);
      }
    });
  }
}

const OID_CANCEL = Buffer.from('1.3.6.1.1.8', 'latin1');
const OID_PASSWD_MODIFY = Buffer.from('1.3.6.1.4.1.4203.1.11.1', 'latin1');

// Schema walk stacks (see endStack).
let kindStack = new Int32Array(64);
let itemStack = new Int32Array(64);
let repStack = new Float64Array(64);
let countStack = new Float64Array(64);
let schemaEndStack = new Float64Array(64);

/**
 * Walks buf[start, end) — BER already validated — against the tag schema
 * rooted at `root` (a kind whose single item is the top element).
 * Iterative; allocation-free once the stacks are large enough.
 */
function schemaWalk(buf: Buffer, start: number, end: number, root: number, maxDepth: number): void {
  const need = Math.min(maxDepth + 2, ((end - start) >>> 1) + 2);
  if (need > kindStack.length) {
    kindStack = new Int32Array(need);
    itemStack = new Int32Array(need);
    repStack = new Float64Array(need);
    countStack = new Float64Array(need);
    schemaEndStack = new Float64Array(need);
  }
  let sp = 0;
  kindStack[0] = root;
  itemStack[0] = 0;
  repStack[0] = 0;
  countStack[0] = 0;
  schemaEndStack[0] = end;
  sp = 1;
  let p = start;

  while (sp > 0) {
    const top = sp - 1;
    const k = KINDS[kindStack[top]];
    const items = k.items;
    if (p === schemaEndStack[top]) {
      // Close: the current item and every later one must be satisfied.
      let i = itemStack[top];
      if (i < items.length && repStack[top] < items[i].min) {
        throw schemaError(k, `missing a required component`, p);
      }
      for (i++; i < items.length; i++) {
        if (items[i].min > 0) throw schemaError(k, `missing a required component`, p);
      }
      if (countStack[top] < k.minChildren) {
        throw schemaError(k, `needs at least ${k.minChildren} component(s)`, p);
      }
      sp--;
      continue;
    }

    const tag = buf[p];
    let i = itemStack[top];
    let r = repStack[top];
    let childKind = 0;
    for (;;) {
      if (i >= items.length) {
        throw schemaError(k, `unexpected tag 0x${tag.toString(16)}`, p);
      }
      const it = items[i];
      if (r < it.max) {
        if (it.anyTag) {
          childKind = SKIP;
          break;
        }
        const idx = it.tags.indexOf(tag);
        if (idx >= 0) {
          childKind = it.kinds[idx];
          break;
        }
      }
      if (r < it.min) {
        throw schemaError(k, `unexpected tag 0x${tag.toString(16)}`, p);
      }
      i++;
      r = 0;
    }
    itemStack[top] = i;
    repStack[top] = r + 1;
    countStack[top]++;

    const contentStart = headerEnd(buf, p);
    const contentEnd = contentStart + contentLength(buf, p);
    if (childKind === LEAF) {
      checkLeaf(buf, tag, contentStart, contentEnd);
      p = contentEnd;
    } else if (childKind === SKIP) {
      p = contentEnd;
    } else {
      kindStack[sp] = childKind;
      itemStack[sp] = 0;
      repStack[sp] = 0;
      countStack[sp] = 0;
      schemaEndStack[sp] = contentEnd;
      sp++;
      p = contentStart;
    }
  }
}

/** Content rules for primitive leaves (X.690 §8.2, §8.3, §8.4, §8.8; RFC 4511 §4, §5.1). */
function checkLeaf(buf: Buffer, tag: number, start: number, end: number): void {
  const n = end - start;
  if (tag === 0x01 && n !== 1) {
    throw new FramingError('structure', `BOOLEAN of ${n} octets at offset ${start}`);
  }
  // INTEGER (0..maxInt), ENUMERATED and AbandonRequest's MessageID fit 4 octets in LDAP.
  if ((tag === TAG_INTEGER || tag === 0x0a || tag === 0x50) && (n < 1 || n > 4)) {
    throw new FramingError('structure', `INTEGER/ENUMERATED of ${n} octets at offset ${start}`);
  }
  // UnbindRequest ::= [APPLICATION 2] NULL, and NULL contents are empty (X.690 §8.8.2).
  // Not pedantry: ldapjs read the unbind with readSequence(), stepping into
  // any contents, and then took what it found there for controls.
  if (tag === 0x42 && n !== 0) {
    throw new FramingError('structure', `UnbindRequest with ${n} content octets at offset ${start}`);
  }
}

function schemaError(k: Kind, what: string, p: number): FramingError {
  return new FramingError('structure', `${k.name}: ${what} at offset ${p} (RFC 4511 §4)`);
}

/**
 * Validates one complete LDAPMessage: {@link validateBer}, then the RFC 4511
 * §4 schema at the level of tags.
 *
 *  - The outer element is a universal SEQUENCE (0x30, else 'bad-tag'); its
 *    first child the messageID, an INTEGER (0x02, else 'bad-tag') of 1..4
 *    content octets and value 0..2^31-1 (§4.1.1.1 MessageID ::= INTEGER
 *    (0..maxInt); else 'structure'); its second child the protocolOp, an
 *    application-class tag 0x40..0x7f (else 'bad-tag').
 *  - The protocolOp must be one RFC 4511 defines (requests and responses)
 *    and match its ASN.1 component by component — tags, order, optionality,
 *    primitive/constructed — with no extra components; filters are checked
 *    to the leaves (§4.5.1.7); a [0] after the protocolOp must be well-formed
 *    Controls (§4.1.11). Components after that are ignored as §4 requires.
 *    BOOLEAN contents are 1 octet, INTEGER/ENUMERATED 1..4, UnbindRequest's
 *    NULL empty. Else 'structure'.
 *  - For the extended operations whose requestValue is BER (cancel, RFC
 *    3909; password modify, RFC 3062) it must be exactly the SEQUENCE those
 *    define.
 *
 * Why this much: the decoders trust tags, lengths and the constructed bit
 * (see the schema notes above). O(n), iterative, allocation-free.
 */
export function validateLdapMessage(buf: Buffer, maxDepth: number): void {
  if (buf.length === 0 || buf[0] !== TAG_SEQUENCE) {
    throw new FramingError('bad-tag', 'LDAPMessage is not a SEQUENCE');
  }
  validateBer(buf, maxDepth);

  // The tree is sound, so every length below stays within buf.
  let p = headerEnd(buf, 0);
  const end = buf.length;
  if (p >= end) {
    throw new FramingError('structure', 'empty LDAPMessage');
  }
  if (buf[p] !== TAG_INTEGER) {
    throw new FramingError('bad-tag', 'messageID is not an INTEGER');
  }
  const idStart = headerEnd(buf, p);
  const idLen = contentLength(buf, p);
  if (idLen < 1 || idLen > 4) {
    throw new FramingError('structure', `messageID has ${idLen} content octets (1..4 allowed)`);
  }
  if (buf[idStart] & 0x80) {
    throw new FramingError('structure', 'messageID is negative');
  }
  p = idStart + idLen;
  if (p >= end) {
    throw new FramingError('structure', 'LDAPMessage has no protocolOp');
  }
  const op = buf[p];
  if (op < 0x40 || op > 0x7f) {
    throw new FramingError('bad-tag', `protocolOp tag 0x${op.toString(16)} is not application class`);
  }

  schemaWalk(buf, 0, end, K_ROOT, maxDepth);

  if (op === 0x77) {
    // ExtendedRequest ::= [APPLICATION 23] SEQUENCE { requestName [0], requestValue [1] OPTIONAL }
    const opContent = headerEnd(buf, p);
    const opEnd = opContent + contentLength(buf, p);
    const nameStart = headerEnd(buf, opContent);
    const nameLen = contentLength(buf, opContent);
    const valueAt = nameStart + nameLen;
    if (valueAt < opEnd) {
      const root = sameBytes(buf, nameStart, nameLen, OID_CANCEL)
        ? K_VALUE_ROOT_CANCEL
        : sameBytes(buf, nameStart, nameLen, OID_PASSWD_MODIFY)
          ? K_VALUE_ROOT_PASSWD
          : -1;
      if (root >= 0) {
        const vStart = headerEnd(buf, valueAt);
        const vEnd = vStart + contentLength(buf, valueAt);
        berWalk(buf, vStart, vEnd, maxDepth);
        schemaWalk(buf, vStart, vEnd, root, maxDepth);
      }
    }
  }
}

function sameBytes(buf: Buffer, start: number, len: number, want: Buffer): boolean {
  return len === want.length && buf.compare(want, 0, len, start, start + len) === 0;
}

/** Offset just past the tag and length octets of the (already validated) element at `p`. */
function headerEnd(buf: Buffer, p: number): number {
  const lb = buf[p + 1];
  return lb < 0x80 ? p + 2 : p + 2 + (lb & 0x7f);
}

/** Content length of the (already validated) element at `p`. */
function contentLength(buf: Buffer, p: number): number {
  const lb = buf[p + 1];
  if (lb < 0x80) return lb;
  let len = 0;
  const n = lb & 0x7f;
  for (let i = 0; i < n; i++) len = len * 256 + buf[p + 2 + i];
  return len;
}

/** Smallest conceivable LDAPMessage content: messageID (3 octets) + an empty primitive protocolOp (2). */
const MIN_MESSAGE_CONTENT = 5;

/**
 * Incremental framer for one connection.
 *
 * Feed it the socket's chunks in order; it returns each complete LDAPMessage
 * as its own Buffer once the whole PDU has arrived and passed
 * {@link validateLdapMessage}. The header is judged as its octets arrive: a
 * non-SEQUENCE tag, an indefinite length, more than 4 length octets, a
 * declared size over `maxPdu` (even before all length octets are in, when
 * the ones seen already make it too big) or a size too small to hold a
 * messageID and protocolOp are rejected at once, so a hostile peer cannot
 * make us buffer a body we will refuse.
 *
 * Buffering is linear: chunks are kept in a list and copied once, into the
 * PDU, when the declared length is complete; a PDU wholly inside one chunk is
 * returned as a zero-copy subarray of it (which keeps that chunk alive as long
 * as the PDU is referenced).
 *
 * After a {@link FramingError} the framer is dead: buffered bytes are dropped
 * (as are PDUs completed earlier in the same `push`) and every later `push`
 * throws the same error. The caller sends {@link noticeOfDisconnection} and
 * closes the connection.
 */
export class PduFramer {
  private readonly maxPdu: number;
  private readonly maxDepth: number;
  /** Buffered chunks; bytes before `headOff` in `chunks[0]` are consumed. */
  private chunks: Buffer[] = [];
  private headOff = 0;
  private buffered = 0;
  /** Total size of the PDU being collected, or -1 while its header is incomplete. */
  private need = -1;
  private failed: FramingError | null = null;

  /** `limits.maxPdu` and `limits.maxDepth` must be positive integers. */
  constructor(limits: FramingLimits) {
    if (!Number.isSafeInteger(limits.maxPdu) || limits.maxPdu < 7) {
      throw new RangeError(`maxPdu must be an integer >= 7, got ${limits.maxPdu}`);
    }
    if (!Number.isSafeInteger(limits.maxDepth) || limits.maxDepth < 1) {
      throw new RangeError(`maxDepth must be a positive integer, got ${limits.maxDepth}`);
    }
    this.maxPdu = limits.maxPdu;
    this.maxDepth = limits.maxDepth;
  }

  /**
   * Feed bytes as they arrive; returns the complete PDUs now available (each
   * a Buffer holding exactly one LDAPMessage, in order; often none). Throws
   * {@link FramingError} as soon as the stream is known to be bad. After a
   * throw the framer is unusable. The framer keeps (and may return views
   * into) the chunks it is given: do not reuse or modify them afterwards.
   */
  push(chunk: Buffer): Buffer[] {
    if (this.failed) throw this.failed;
    const out: Buffer[] = [];
    if (chunk.length === 0) return out;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      for (;;) {
        if (this.need < 0) {
          this.need = this.readHeader();
          if (this.need < 0) break;
        }
        if (this.buffered < this.need) break;
        const pdu = this.take(this.need);
        this.need = -1;
        validateLdapMessage(pdu, this.maxDepth);
        out.push(pdu);
      }
    } catch (err) {
      this.failed =
        err instanceof FramingError ? err : new FramingError('structure', `framing failed: ${String(err)}`);
      this.chunks = [];
      this.headOff = 0;
      this.buffered = 0;
      throw this.failed;
    }
    return out;
  }

  /** Bytes buffered waiting for the rest of a PDU. */
  get pending(): number {
    return this.buffered;
  }

  /** The i-th unconsumed byte; i < this.buffered, and in practice i < 6. */
  private byteAt(i: number): number {
    let off = this.headOff + i;
    for (const c of this.chunks) {
      if (off < c.length) return c[off];
      off -= c.length;
    }
    /* istanbul ignore next -- callers check `buffered` first */
    throw new Error('byteAt past buffered data');
  }

  /**
   * Decodes as much of the outer header as has arrived. Returns the PDU's
   * total size once known, -1 if more octets are needed, and throws as soon
   * as the octets seen so far condemn the stream.
   */
  private readHeader(): number {
    const have = this.buffered;
    if (have < 1) return -1;
    const tag = this.byteAt(0);
    if (tag !== TAG_SEQUENCE) {
      throw new FramingError('bad-tag', `PDU starts with tag 0x${tag.toString(16)}, not SEQUENCE (RFC 4511 §4.1.1)`);
    }
    if (have < 2) return -1;
    const lb = this.byteAt(1);
    let len: number;
    let hdr: number;
    if (lb < 0x80) {
      len = lb;
      hdr = 2;
    } else if (lb === 0x80) {
      throw new FramingError('indefinite-length', 'indefinite-length PDU (RFC 4511 §5.1)');
    } else {
      const n = lb & 0x7f;
      if (n > 4) {
        throw new FramingError('bad-length', `PDU length uses ${n} octets (at most 4 accepted)`);
      }
      hdr = 2 + n;
      // Judge the length from the octets we have: the rest can only add to it.
      const seen = Math.min(n, have - 2);
      len = 0;
      for (let i = 0; i < seen; i++) len = len * 256 + this.byteAt(2 + i);
      const floor = len * 256 ** (n - seen);
      if (hdr + floor > this.maxPdu) {
        throw new FramingError(
          'too-large',
          `PDU declares ${seen === n ? len : `at least ${floor}`} bytes, over the ${this.maxPdu}-byte limit`,
        );
      }
      if (seen < n) return -1;
    }
    if (hdr + len > this.maxPdu) {
      throw new FramingError('too-large', `PDU declares ${len} bytes, over the ${this.maxPdu}-byte limit`);
    }
    if (len < MIN_MESSAGE_CONTENT) {
      throw new FramingError('structure', `PDU of ${len} content bytes cannot hold an LDAPMessage`);
    }
    return hdr + len;
  }

  /** Removes the next n (<= buffered) bytes and returns them as one Buffer. */
  private take(n: number): Buffer {
    const chunks = this.chunks;
    const first = chunks[0];
    let pdu: Buffer;
    let ci: number; // index of the first chunk not fully consumed afterwards
    if (first.length - this.headOff >= n) {
      pdu = first.subarray(this.headOff, this.headOff + n);
      this.headOff += n;
      ci = 0;
    } else {
      pdu = Buffer.allocUnsafe(n);
      let filled = 0;
      ci = 0;
      let off = this.headOff;
      while (filled < n) {
        const c = chunks[ci];
        const k = Math.min(c.length - off, n - filled);
        c.copy(pdu, filled, off, off + k);
        filled += k;
        off += k;
        if (off === c.length) {
          ci++;
          off = 0;
        }
      }
      this.headOff = off;
    }
    if (ci < chunks.length && this.headOff === chunks[ci].length) {
      ci++;
      this.headOff = 0;
    }
    if (ci === chunks.length) {
      this.chunks = [];
    } else if (ci > 0) {
      // Only the tail of the most recent chunk can remain: cheap.
      this.chunks = chunks.slice(ci);
    }
    this.buffered -= n;
    return pdu;
  }
}

/** OID of the Notice of Disconnection unsolicited notification (RFC 4511 §4.4.1). */
export const NOTICE_OF_DISCONNECTION_OID = '1.3.6.1.4.1.1466.20036';
/** StartTLS (RFC 4511 §4.14.1). */
export const START_TLS_OID = '1.3.6.1.4.1.1466.20037';
/**
 * RFC 4533 §2.2-2.5: the Sync Request, Sync State and Sync Done controls and
 * the Sync Info message, named once for the provider (server/ldap/sync.ts)
 * and the consumer (server/directory-client/sync.ts).
 */
export const SYNC_REQUEST_OID = '1.3.6.1.4.1.4203.1.9.1.1';
export const SYNC_STATE_OID = '1.3.6.1.4.1.4203.1.9.1.2';
export const SYNC_DONE_OID = '1.3.6.1.4.1.4203.1.9.1.3';
export const SYNC_INFO_OID = '1.3.6.1.4.1.4203.1.9.1.4';

/**
 * Builds the RFC 4511 §4.4.1 Notice of Disconnection: an ExtendedResponse
 * ([APPLICATION 24]) with messageID 0 (an unsolicited notification, §4.4),
 * the given resultCode, matchedDN "", the given diagnosticMessage (UTF-8)
 * and responseName 1.3.6.1.4.1.1466.20036; responseValue absent.
 *
 * §4.4.1 gives meanings for protocolError (2: the LDAPMessage could not be
 * parsed — what framing failures are), strongerAuthRequired (8) and
 * unavailable (52); other codes are accepted but should not be used. After
 * sending it the server closes the connection (§4.4.1, §5.3).
 * `resultCode` must be an integer in 0..2^31-1, else RangeError.
 */
export function noticeOfDisconnection(resultCode: number, message: string): Buffer {
  if (!Number.isInteger(resultCode) || resultCode < 0 || resultCode > 0x7fffffff) {
    throw new RangeError(`resultCode must be an integer in 0..2^31-1, got ${resultCode}`);
  }
  const body = Buffer.concat([
    tlv(0x0a, integerContent(resultCode)), // resultCode ENUMERATED
    tlv(0x04, Buffer.alloc(0)), // matchedDN LDAPDN ""
    tlv(0x04, Buffer.from(message, 'utf8')), // diagnosticMessage LDAPString
    tlv(0x8a, Buffer.from(NOTICE_OF_DISCONNECTION_OID, 'latin1')), // responseName [10] LDAPOID
  ]);
  return tlv(TAG_SEQUENCE, Buffer.concat([tlv(TAG_INTEGER, Buffer.from([0])), tlv(0x78, body)]));
}
