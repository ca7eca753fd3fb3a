/**
 * What the DKIM tests share: dkimpy's verdict on a message (through
 * test/mta/dkim-verify.py, resolving on our DNS port), the tags of a
 * message's DKIM-Signature fields, and the TXT answers of our DNS port.
 */
import * as path from 'node:path';
import { run } from '../helpers';
import { digRunner, section } from '../dns/fixture';

/** dkimpy's verdict on `message`: one line per signature (`a d s pass|fail`), then `pass` or `fail` (code 0 or 1). */
export async function dkimVerify(port: number, message: string): Promise<{ code: number; out: string; last: string }> {
  // The Python script lives beside this test's source, which tsc does not copy to dist.
  const script = path.join(__dirname, '..', '..', '..', 'test', 'mta', 'dkim-verify.py');
  const r = await run('/usr/bin/python3', [script, String(port)], message);
  const out = `${r.stdout}${r.stderr}`.trim();
  return { code: r.code, out, last: r.stdout.trim().split('\n').pop() ?? '' };
}

/** The tags of each DKIM-Signature field of `message` (folding whitespace removed), in order. */
export function signatures(message: string): Record<string, string>[] {
  return [...message.matchAll(/^DKIM-Signature:(.*(?:\r?\n[ \t].*)*)/gim)].map((m) =>
    Object.fromEntries(m[1].replace(/\s+/g, '').split(';').filter(Boolean).map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)])));
}

/** The TXT strings of `name` on our DNS port, each answer's strings joined (RFC 6376 §3.6.2.2). */
export async function txt(port: number, name: string): Promise<{ status: string; records: string[] }> {
  const r = await digRunner(port)(name, 'TXT');
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `none: ${r.stderr}`;
  const records = section(r.stdout, 'ANSWER')
    .map((l) => [...l.replace(/^\S+\s+\d+\s+IN\s+TXT\s+/, '').matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join(''));
  return { status, records };
}

/** A Maildir file as sent on the wire: LF line ends made CRLF (the Maildir convention writes LF). */
export function crlf(maildirFile: string): string {
  return maildirFile.replace(/\r?\n/g, '\r\n');
}
