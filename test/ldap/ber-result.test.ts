/**
 * server/ber.ts encodes an LDAPResult (RFC 4511 §4.1.9) in one buffer: its
 * bytes are those the tests' own BER builder (test/fixtures/ber.ts, minimal
 * definite lengths, X.690 §8.1.3) gives, at every length boundary of the
 * message ID, the result code and the strings, with and without response
 * controls (§4.1.11).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { encodeControl, encodeLdapResult, encodePagedValue } from '../../server/ber';
import { enumerated, message, octets, tlv } from '../fixtures/ber';

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
