/**
 * The From: domain the signing key is chosen by (server/mta/dkim-sign.ts
 * fromDomain, RFC 5322 §3.6.2): a table of header sections.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { fromDomain } from '../../server/mta/dkim-sign';

const cases: [string, string | undefined][] = [
  ['From: Alice <alice@Example.ORG>\r\nTo: b@c.example', 'example.org'],
  ['Subject: x\r\nFrom: "a@quoted.example" <x@real.example>', 'real.example'],
  ['From: team: a@first.example, b@second.example;', 'first.example'],
  ['From: Alice\r\n <a@folded.example>', 'folded.example'],
  ['From: a@first.example\r\nFrom: b@second.example', 'first.example'],
  ['From: a@bücher.example', 'xn--bcher-kva.example'],
  ['From: a@trailing.example.', 'trailing.example'],
  ['FROM: a@upper.example', 'upper.example'],
  ['From: nobody', undefined],
  ['From: a@[192.0.2.1]', undefined],
  ['To: a@b.example', undefined],
  ['', undefined],
];

test('fromDomain: the domain of the first address of the first From: field, lower case, in A-labels', () => {
  for (const [section, want] of cases) assert.equal(fromDomain(section), want, JSON.stringify(section));
});
