/**
 * Distinguished names: the string form of RFC 4514, parsed into RDNs and
 * formatted back with the escaping that section 2.4 requires.
 *
 * A `Dn` lists its RDNs from the most specific (leftmost) to the root, as
 * written. Attribute types are kept as written; the schema registry maps them
 * to canonical types when it normalises a DN.
 */

/** One attribute type and value assertion of an RDN. */
export interface Ava {
  type: string;
  value: string;
}

/** A relative distinguished name: one or more AVAs joined by '+'. */
export type Rdn = Ava[];

/** A distinguished name, most specific RDN first. The root DSE is []. */
export type Dn = Rdn[];

/** Thrown for a string that is not an RFC 4514 DN. */
export class DnSyntaxError extends Error {
  constructor(readonly input: string, why: string) {
    super(`invalid DN '${input.length > 200 ? input.slice(0, 200) + '…' : input}': ${why}`);
    this.name = 'DnSyntaxError';
  }
}

const TYPE_RE = /^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)$/;
const MAX_DN = 8192;

/** Parses an RFC 4514 DN string. Throws DnSyntaxError. Accepts ';' as an RDN separator (RFC 4514 §3 allows readers to). */
export function parseDn(input: string): Dn {
  if (input.length > MAX_DN) throw new DnSyntaxError(input, 'too long');
  const s = input;
  const dn: Dn = [];
  let i = 0;
  const n = s.length;
  const skipSpace = () => {
    while (i < n && s[i] === ' ') i++;
  };
  skipSpace();
  if (i === n) return dn;
  let rdn: Rdn = [];
  for (;;) {
    skipSpace();
    // attribute type
    const t0 = i;
    while (i < n && s[i] !== '=' && s[i] !== ',' && s[i] !== '+' && s[i] !== ';') i++;
    if (i >= n || s[i] !== '=') throw new DnSyntaxError(input, `expected '=' after attribute type at ${t0}`);
    let type = s.slice(t0, i).trim();
    if (/^oid\./i.test(type)) type = type.slice(4);
    if (!TYPE_RE.test(type)) throw new DnSyntaxError(input, `bad attribute type '${type}'`);
    i++; // '='
    skipSpace();
    let value: string;
    if (s[i] === '#') {
      // RFC 4514 §2.4: '#' then the hex of the BER encoding.
      const h0 = ++i;
      while (i < n && /[0-9A-Fa-f]/.test(s[i])) i++;
      const hex = s.slice(h0, i);
      if (hex.length === 0 || hex.length % 2) throw new DnSyntaxError(input, 'bad hex string value');
      value = berStringValue(Buffer.from(hex, 'hex')) ?? '#' + hex.toLowerCase();
      skipSpace();
    } else {
      const bytes: number[] = [];
      let lastSignificant = 0; // length of bytes up to the last escaped or non-space char
      while (i < n) {
        const c = s[i];
        if (c === ',' || c === '+' || c === ';') break;
        if (c === '\\') {
          i++;
          if (i >= n) throw new DnSyntaxError(input, 'dangling backslash');
          const c1 = s[i];
          if (/[0-9A-Fa-f]/.test(c1) && i + 1 < n && /[0-9A-Fa-f]/.test(s[i + 1])) {
            bytes.push(parseInt(s.slice(i, i + 2), 16));
            i += 2;
          } else if (' "#+,;<=>\\'.includes(c1) || c1 === '=') {
            bytes.push(c1.charCodeAt(0));
            i++;
          } else {
            throw new DnSyntaxError(input, `bad escape '\\${c1}'`);
          }
          lastSignificant = bytes.length;
          continue;
        }
        if (c === '"') throw new DnSyntaxError(input, 'unescaped quote');
        const b = Buffer.from(c.codePointAt(0)! > 0xffff ? s.slice(i, i + 2) : c, 'utf8');
        i += c.codePointAt(0)! > 0xffff ? 2 : 1;
        for (const x of b) bytes.push(x);
        if (c !== ' ') lastSignificant = bytes.length;
      }
      value = Buffer.from(bytes.slice(0, lastSignificant)).toString('utf8');
    }
    rdn.push({ type, value });
    if (i >= n) {
      dn.push(rdn);
      break;
    }
    const sep = s[i++];
    if (sep === '+') continue;
    dn.push(rdn);
    rdn = [];
    skipSpace();
    if (i >= n) throw new DnSyntaxError(input, 'empty RDN at end');
  }
  return dn;
}

/** Decodes a BER-encoded string value (the `#hex` RDN form) when it is a plain string type. */
function berStringValue(b: Buffer): string | undefined {
  if (b.length < 2) return undefined;
  const tag = b[0];
  if (![0x04, 0x0c, 0x13, 0x16, 0x14, 0x1e].includes(tag)) return undefined;
  let len = b[1];
  let off = 2;
  if (len & 0x80) {
    const k = len & 0x7f;
    if (k === 0 || k > 3 || b.length < 2 + k) return undefined;
    len = 0;
    for (let j = 0; j < k; j++) len = (len << 8) | b[2 + j];
    off = 2 + k;
  }
  if (off + len !== b.length) return undefined;
  return b.subarray(off).toString('utf8');
}

/** Escapes an attribute value for the string form of a DN (RFC 4514 §2.4). */
export function escapeDnValue(v: string): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '\\' || c === '"' || c === '+' || c === ',' || c === ';' || c === '<' || c === '>' || c === '=') {
      out += '\\' + c;
    } else if (c < ' ') {
      // Control characters as hex pairs, so normalised DNs never hold raw separators.
      out += '\\' + c.charCodeAt(0).toString(16).padStart(2, '0');
    } else if ((c === ' ' && (i === 0 || i === v.length - 1)) || (c === '#' && i === 0)) {
      out += '\\' + c;
    } else {
      out += c;
    }
  }
  return out;
}

/** Formats an RDN: AVAs joined by '+'. */
export function formatRdn(rdn: Rdn): string {
  return rdn.map((a) => `${a.type}=${escapeDnValue(a.value)}`).join('+');
}

/** Formats a DN in RFC 4514 string form (no spaces after commas). */
export function formatDn(dn: Dn): string {
  return dn.map(formatRdn).join(',');
}

/** The parent of a DN ([] for a single-RDN DN). */
export function parentDn(dn: Dn): Dn {
  return dn.slice(1);
}
