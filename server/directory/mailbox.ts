/**
 * Where a mailbox lives on disk: the one mapping from an address to its
 * Maildir, shared by local delivery (server/mta/maildir.ts) and the
 * directory, which publishes it as `mailMessageStore` so that an IMAP
 * server (Dovecot's userdb) finds the Maildir without re-implementing the
 * encoding below.
 */
import * as path from 'node:path';
import { domainToASCII } from 'node:url';

/** Thrown by mailboxPath for an address that cannot name a mailbox. */
export class InvalidMailboxError extends Error {
  constructor(readonly address: string, reason: string) {
    super(`invalid mailbox address ${JSON.stringify(address)}: ${reason}`);
    this.name = 'InvalidMailboxError';
  }
}

/** Bytes kept literally in a path component; everything else (including '%') is %XX of its UTF-8 bytes. */
const SAFE_BYTE = /^[a-z0-9._+=-]$/;
/** Longest file name most file systems accept (ext4, xfs, btrfs: 255 bytes). */
const NAME_MAX = 255;

function encodeComponent(address: string, part: string, what: string): string {
  if (part === '' || part === '.' || part === '..') {
    throw new InvalidMailboxError(address, `${what} is ${part === '' ? 'empty' : JSON.stringify(part)}`);
  }
  let out = '';
  for (const byte of Buffer.from(part, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE_BYTE.test(ch) ? ch : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  if (out.length > NAME_MAX) throw new InvalidMailboxError(address, `${what} is too long`);
  return out;
}

/**
 * Where a recipient's mailbox lives: `<root>/mail/<domain>/<localpart>`,
 * where `root` is the data directory (DCMX_DATA_DIR).
 *
 * - The address is split at its last '@'; both parts are folded to lower
 *   case (Unicode NFC, then toLowerCase). A domain in Unicode is converted
 *   to its A-label form (UTS #46, node:url domainToASCII) so `bücher.example`
 *   and `xn--bcher-kva.example` share a mailbox; a trailing dot is dropped.
 * - Every byte outside `[a-z0-9._+=-]` is percent-encoded (`%2F`, `%C3%A9`),
 *   '%' included, so the mapping is injective and no component can contain
 *   a path separator or escape the root.
 * - Throws InvalidMailboxError for an address without '@', an empty part,
 *   a part that is '.' or '..', or a component longer than 255 bytes.
 *
 * The result is always strictly inside `path.resolve(root, 'mail')`.
 */
export function mailboxPath(root: string, address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) throw new InvalidMailboxError(address, "no '@'");
  const local = address.slice(0, at).normalize('NFC').toLowerCase();
  let domain = address.slice(at + 1).normalize('NFC').toLowerCase();
  if (domain.endsWith('.') && domain !== '.' && domain !== '..') domain = domain.slice(0, -1);
  if (domain !== '' && domain !== '.' && domain !== '..' && !domain.startsWith('[')) {
    // domainToASCII parses like a URL host ('b/c.org' would become 'b'), so
    // only letters, digits, '-', '_', '.' and non-ASCII go in, and only an
    // LDH name (A-labels included) may come out.
    const ascii = /^(?:[a-z0-9._-]|[^\x00-\x7f])+$/.test(domain) ? domainToASCII(domain) : '';
    if (!/^[a-z0-9._-]+$/.test(ascii)) throw new InvalidMailboxError(address, 'the domain is not a valid host name');
    domain = ascii;
  }
  const base = path.resolve(root, 'mail');
  const box = path.join(base, encodeComponent(address, domain, 'the domain'), encodeComponent(address, local, 'the local part'));
  // Belt and braces: the encoding already makes this impossible.
  if (path.dirname(path.dirname(box)) !== base) throw new InvalidMailboxError(address, 'path escapes the mail root');
  return box;
}
