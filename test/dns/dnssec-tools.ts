/**
 * Real DNSSEC validators and zone checkers, for the tests: `delv`
 * (bind9-dnsutils) with a zone's DNSKEY as its trust anchor, asking an
 * authoritative server on loopback; `dnssec-verify` (bind9-utils) and
 * `kzonecheck` (knot-dnssecutils) on a master file.
 *
 *   const anchor = await trustAnchor(dir, 'example.org', dig);   // the zone's DNSKEY from a server, as a delv anchor file
 *   const v = await delv(port, anchor, 'www.example.org', 'A');
 *   assert.ok(v.validated, v.output);
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, type RunResult } from '../helpers';
import type { DigRunner } from './fixture';

/** A delv trust-anchor file (`-a`) for one zone: its name and where it lies. */
export interface TrustAnchor {
  zone: string;
  file: string;
}

/**
 * The zone's DNSKEY RRset as `dig` (bound to an authoritative server) gives
 * it, written into `dir` as a delv trust-anchor file with every key that
 * has the SEP flag (257) as a static key. Fails the test when there is none.
 */
export async function trustAnchor(dir: string, zone: string, dig: DigRunner): Promise<TrustAnchor> {
  const r = await dig('+short', zone, 'DNSKEY');
  const keys = r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[0] === '257' && f.length >= 4);
  assert.ok(keys.length > 0, `no DNSKEY with flags 257 for ${zone}:\n${r.stdout}${r.stderr}`);
  const lines = keys.map(([flags, proto, alg, ...key]) => `  "${zone}." static-key ${flags} ${proto} ${alg} "${key.join('')}";`);
  const file = path.join(dir, `${zone}.anchor`);
  fs.writeFileSync(file, `trust-anchors {\n${lines.join('\n')}\n};\n`);
  return { zone, file };
}

/** What delv made of one question. */
export interface DelvResult {
  /** delv validated the answer (positive or negative) up to the trust anchor. */
  validated: boolean;
  /** For a validated negative answer: NXDOMAIN or NXRRSET (NODATA); undefined for a positive one. */
  negative?: 'NXDOMAIN' | 'NXRRSET';
  /** The records of a positive answer, white space folded, RRSIG lines included. */
  records: string[];
  /** Everything delv printed, for assertion messages. */
  output: string;
}

/**
 * `delv` asking the server on 127.0.0.1:`port` for name/type, validating
 * with `anchor` as its only trust anchor (`+root=<zone>`). delv exits 0
 * whether or not validation succeeds, so what it printed is what counts:
 * "; fully validated" or "; negative response, fully validated".
 */
export async function delv(port: number, anchor: TrustAnchor, name: string, type: string): Promise<DelvResult> {
  const r: RunResult = await run('delv', ['@127.0.0.1', '-p', String(port), '-a', anchor.file, `+root=${anchor.zone}`, '+tcp', name, type]);
  const output = r.stdout + r.stderr;
  const negative = /^; negative response, fully validated/m.test(r.stdout);
  const positive = /^; fully validated/m.test(r.stdout);
  const kind = /\\-\w+\s+;-\$(NXDOMAIN|NXRRSET)/.exec(r.stdout)?.[1] as DelvResult['negative'];
  const records = positive ? r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' ').trim()) : [];
  return { validated: positive || negative, negative: negative ? kind : undefined, records, output };
}

/** The outcome of a zone checker on a master file: its exit code and what it printed. */
export interface CheckResult {
  ok: boolean;
  output: string;
}

/**
 * BIND's `dnssec-verify -z -o <zone> <file>`: every RRset signed, the NSEC
 * chain complete and right. `-z`: a combined signing key (flags 257) signs
 * everything, as dcmx's CSK does (without it dnssec-verify wants a ZSK).
 */
export async function dnssecVerify(zone: string, file: string): Promise<CheckResult> {
  const r = await run('dnssec-verify', ['-z', '-o', zone, file]);
  return { ok: r.code === 0, output: r.stdout + r.stderr };
}

/** Knot's `kzonecheck -d on -o <zone> <file>`: the zone's semantic checks with the DNSSEC ones. */
export async function kzonecheck(zone: string, file: string): Promise<CheckResult> {
  const r = await run('kzonecheck', ['-d', 'on', '-o', zone, file]);
  return { ok: r.code === 0, output: r.stdout + r.stderr };
}
