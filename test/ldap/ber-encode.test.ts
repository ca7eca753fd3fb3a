/**
 * server/ber.ts encodes a SearchResultEntry (RFC 4511 §4.5.2) and an
 * LDAPResult (§4.1.9) each in one buffer: their bytes are those the tests'
 * own BER builder (test/fixtures/ber.ts, minimal definite lengths, X.690
 * §8.1.3) gives, at every length boundary of the message ID, the result
 * code and the strings, with and without response controls (§4.1.11); an
 * entry with many attributes and values, binary ones among them.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { encodeControl, encodeLdapResult, encodePagedValue, encodeSearchEntry } from '../../server/ber';
import { enumerated, message, octets, seq, set, tlv } from '../fixtures/ber';

test('an LDAPResult is encoded as the independent builder encodes it', () => {
  const ids = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0x7fffff, 0x800000, 0x7fffffff];
  const codes = [0, 32, 127, 128, 4096];
  const strings = ['', 'o=internet', 'é€😀', 'x'.repeat(127), 'x'.repeat(128), 'y'.repeat(70_000)];
  const controlLists = [[], [encodeControl('1.2.840.113556.1.4.319', false, encodePagedValue(0, Buffer.from('cookie')))], [Buffer.alloc(300, 7), Buffer.alloc(3, 1)]];
  let n = 0;
  for (const id of ids) {
    for (const code of codes) {
      for (const matched of strings) {
        for (const diagnostic of strings.slice(0, 5)) {
          for (const controls of controlLists) {
            for (const tag of [0x65, 0x61, 0x67]) {
              const want = message(id, tlv(tag, enumerated(code), octets(matched), octets(diagnostic)), controls.length ? controls : undefined);
              assert.deepEqual(encodeLdapResult(id, tag, code, matched, diagnostic, controls), want, `id ${id} code ${code} tag ${tag}`);
              n++;
            }
          }
        }
      }
    }
  }
  assert.equal(n, 10 * 5 * 6 * 5 * 3 * 3);
});

test('a SearchResultEntry is encoded as the independent builder encodes it, one entry after another', () => {
  const strings = ['', 'cn', 'é€😀', 'x'.repeat(127), 'x'.repeat(128), 'y'.repeat(70_000)];
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 300; round++) {
    // Every 50th entry is far larger than the ones before it (the encoder's scratch must grow).
    const many = round % 50 === 49;
    const attrs = Array.from({ length: next(many ? 300 : 10) }, (_, i) => [
      `a${i}${strings[next(3)]}`,
      Array.from({ length: next(many ? 500 : 4) }, () => (next(8) === 0 ? Buffer.alloc(next(300), next(256)) : strings[next(many ? 5 : strings.length)])),
    ] as const);
    const id = [0, 1, 0x7f, 0x80, 0x7fffffff][next(5)];
    const dn = strings[next(5)];
    const want = message(id, tlv(0x64, octets(dn), seq(...attrs.map(([type, values]) => seq(octets(type), set(...values.map((v) => octets(v))))))));
    assert.deepEqual(encodeSearchEntry(id, dn, attrs), want, `entry ${round}`);
  }
});
