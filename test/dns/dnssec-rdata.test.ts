/**
 * The DNSSEC record types (DS, CDS, DNSKEY, CDNSKEY, RRSIG, NSEC) through
 * records.ts and the wire codec: presentation → RDATA → wire, decoded by an
 * independent decoder (python3-dnspython), and back through our own decoder.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { decodeMessage, encodeResponse, typeBitmap, type Response } from '../../server/dns/wire';
import { formatRData, parseRData, RDataError, RRTYPE, type RR } from '../../server/directory/records';

/** Values in BIND's presentation form; the RFC 6605 §6.1 example key and DS, an RRSIG and NSECs. */
const CASES: [number, string][] = [
  [RRTYPE.DNSKEY, '257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA=='],
  [RRTYPE.CDNSKEY, '257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA=='],
  [RRTYPE.DS, '55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17'],
  [RRTYPE.CDS, '55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17'],
  [RRTYPE.CDS, '0 0 0 00'],
  [RRTYPE.CDNSKEY, '0 3 0 AA=='],
  [RRTYPE.RRSIG, 'A 13 3 3600 20261221170000 20261207160000 55648 example.net. qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw=='],
  [RRTYPE.NSEC, 'host.example.com. A MX RRSIG NSEC TYPE1234'],
  [RRTYPE.NSEC, '\\000.nope.example.com. RRSIG NSEC NXNAME'],
];

function encodeRRs(rrs: RR[]): Buffer {
  const r: Response = {
    id: 1, opcode: 0, aa: true, rd: false, cd: false, rcode: 0, question: { name: 'example.net', type: RRTYPE.ANY, class: 1 },
    answer: rrs, authority: [], additional: [],
  };
  return encodeResponse(r, 65535);
}

/** dnspython's text of every answer RR's RDATA. */
function dnspythonRData(wire: Buffer): string[] {
  const py = 'import sys,dns.message\nm=dns.message.from_wire(sys.stdin.buffer.read())\nfor s in m.answer:\n  for r in s: print(r.to_text())';
  return execFileSync('/usr/bin/python3', ['-c', py], { input: wire }).toString().trim().split('\n');
}

describe('DNSSEC RDATA', () => {
  test('presentation round trip, and the wire read by dnspython as BIND would print it', () => {
    // One owner each, so that dnspython keeps them apart (it merges RRs of one owner and type into an RRset).
    const rrs = CASES.map(([type, text], i) => ({ name: `r${i}.example.net`, ttl: 3600, rdata: parseRData(type, text) }));
    for (const [i, rr] of rrs.entries()) {
      const again = formatRData(rr.rdata);
      assert.deepEqual(parseRData(CASES[i][0], again), rr.rdata, `${CASES[i][1]} → ${again}`);
    }
    const wire = encodeRRs(rrs);
    const theirs = dnspythonRData(wire);
    const norm = (s: string): string => s.replace(/\s+/g, '').toUpperCase();
    assert.equal(theirs.length, CASES.length);
    for (const [i, [, text]] of CASES.entries()) {
      // dnspython prints the delete CDS as `0 0 0 00` and the delete CDNSKEY as `0 3 0 AA==`, like the RFC 8078
      // erratum, and NXNAME (RFC 9824, newer than it) generically.
      assert.equal(norm(theirs[i]), norm(text.replace('NXNAME', 'TYPE128')), `dnspython read ${theirs[i]} for ${text}`);
    }
    const ours = decodeMessage(wire)!;
    assert.deepEqual(ours.answer.map((l) => l.split('\t')[4]), rrs.map((rr) => formatRData(rr.rdata)));
  });

  test('NSEC bitmap windows (RFC 4034 §4.1.4 example)', () => {
    // A MX RRSIG NSEC TYPE1234: window 0 length 6, window 4 length 27.
    const b = typeBitmap([1, 15, 46, 47, 1234]);
    assert.equal(b.toString('hex'),
      '0006400100000003' + '041b' + '00'.repeat(26) + '20');
  });

  test('bad values are refused with a reason', () => {
    assert.throws(() => parseRData(RRTYPE.DS, '1 13 2 XYZ'), RDataError);
    assert.throws(() => parseRData(RRTYPE.DNSKEY, '257 3 13 not*base64'), RDataError);
    assert.throws(() => parseRData(RRTYPE.RRSIG, 'A 13 3 3600 20261221170000 20261207160000 1 example.net. AAA'), RDataError);
    assert.throws(() => parseRData(RRTYPE.NSEC, 'next.example. BOGUS'), /unknown type/);
  });
});
