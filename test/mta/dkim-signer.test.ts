/**
 * server/mta/dkim-sign.ts in process: the From: domain the signing key is
 * chosen by (fromDomain, RFC 5322 §3.6.2), a table of header sections; and
 * what MessageSigner does with what it finds: only `submitted` mail, the
 * From: domain's keys or its nearest hosted parent's, else the envelope
 * sender's, nothing without a From: field, a clear error for a stored key
 * that is no key. Signatures themselves are checked by real verifiers in
 * dkim-sign.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { fromDomain, MessageSigner } from '../../server/mta/dkim-sign';
import type { DkimSigningKey } from '../../server/directory/dkim';
import type { QueuedMessage } from '../../server/mta/types';

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

const pem = (alg: 'rsa' | 'ed25519') => (alg === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 1024 }) : generateKeyPairSync('ed25519'))
  .privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

test('MessageSigner: which mail, which domain\'s keys, and a clear error for a key that is no key', async () => {
  const hosted = new Map<string, DkimSigningKey[]>([
    ['example.org', [{ domain: 'example.org', selector: 'd1-rsa', privateKey: pem('rsa') }, { domain: 'example.org', selector: 'd1-ed25519', privateKey: pem('ed25519') }]],
    ['sender.example', [{ domain: 'sender.example', selector: 's1-ed25519', privateKey: pem('ed25519') }]],
    ['broken.example', [{ domain: 'broken.example', selector: 'bad', privateKey: 'not a key' }]],
  ]);
  const asked: string[] = [];
  const signer = new MessageSigner((d) => {
    asked.push(d);
    return hosted.get(d) ?? [];
  });
  const message = (from: string, sender: string, submitted = true): QueuedMessage => ({
    id: 'T1', sender, receivedAt: new Date(), spoolPath: '', size: 0, submitted,
    body: Buffer.from(`${from}To: x@y.example\r\nSubject: s\r\n\r\nbody\r\n`),
  });
  const tags = (b: Buffer | undefined) => [...(b?.toString() ?? '').matchAll(/\bd=([^;]+);[\s\S]*?\bs=([^;]+);/g)].map((m) => `${m[1]} ${m[2]}`);

  assert.equal(await signer.signatures(message('From: a@example.org\r\n', 'a@example.org', false)), undefined, 'mail from outside is not signed');
  assert.deepEqual(tags(await signer.signatures(message('From: a@mail.example.org\r\n', 'a@sender.example'))), ['example.org d1-rsa', 'example.org d1-ed25519'],
    'the nearest hosted parent of the From: domain, both keys');
  assert.deepEqual(asked.slice(0, 2), ['mail.example.org', 'example.org']);
  assert.deepEqual(tags(await signer.signatures(message('From: a@not-hosted.example\r\n', 'a@sender.example'))), ['sender.example s1-ed25519'],
    'else the envelope sender\'s domain');
  assert.equal(await signer.signatures(message('From: a@not-hosted.example\r\n', '')), undefined, 'no hosted domain: unsigned');
  assert.equal(await signer.signatures(message('', 'a@example.org')), undefined, 'no From: field (RFC 6376 §5.4): unsigned');
  await assert.rejects(signer.signatures(message('From: a@broken.example\r\n', '')), /DKIM signing failed for broken\.example: bad: /);
});

test('MessageSigner: the list and resent fields RFC 6376 §5.4.1 names are signed (RFC 8058 §4: List-Unsubscribe and List-Unsubscribe-Post)', async () => {
  const key = { domain: 'example.org', selector: 'd1-ed25519', privateKey: pem('ed25519') };
  const signer = new MessageSigner((d) => (d === 'example.org' ? [key] : []));
  const fields = ['List-Id: <news.example.org>', 'List-Unsubscribe: <https://example.org/u/1>', 'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
    'Resent-From: b@example.org', 'X-Mailer: unsigned'];
  const got = await signer.signatures({
    id: 'T2', sender: 'a@example.org', receivedAt: new Date(), spoolPath: '', size: 0, submitted: true,
    body: Buffer.from(`From: a@example.org\r\nTo: x@y.example\r\n${fields.join('\r\n')}\r\nSubject: s\r\n\r\nbody\r\n`),
  });
  const h = /\bh=([^;]+);/.exec((got?.toString() ?? '').replace(/\r\n[ \t]+/g, ''))?.[1].split(':').map((f) => f.trim().toLowerCase()) ?? [];
  for (const f of ['list-id', 'list-unsubscribe', 'list-unsubscribe-post', 'resent-from']) assert.ok(h.includes(f), `h= covers ${f}: ${h.join(':')}`);
  assert.ok(!h.includes('x-mailer'), `h= leaves out fields not listed: ${h.join(':')}`);
});
