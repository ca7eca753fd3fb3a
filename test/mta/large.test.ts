/**
 * Messages above the inline size (INLINE_MAX) go through spool files: they
 * are delivered intact, and their spool file is gone once delivered.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import nodemailer from 'nodemailer';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { INLINE_MAX } from '../../server/mta/spool';
import { ls, waitFor } from './fixture';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
  t.app.provisioner.provisionDomain('big.example');
  const r = await run('ldapadd', adminArgs(t), 'dn: uid=u,ou=people,dc=big,dc=example,o=internet\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: u\ncn: u\nsn: u\nmail: u@big.example\n');
  assert.equal(r.code, 0, r.stderr);
});
after(async () => t.close());

test('a message larger than INLINE_MAX is spooled to a file, delivered intact, and the file removed', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.app.ports.smtp, secure: false, ignoreTLS: true });
  const body = Array.from({ length: Math.ceil((INLINE_MAX * 2) / 64) }, (_, i) => `line ${String(i).padStart(8, '0')} ${'x'.repeat(44)}`).join('\r\n');
  await transport.sendMail({ from: 'a@sender.example', to: 'u@big.example', subject: 'big', text: body });
  transport.close();
  const dir = path.join(t.dataDir, 'mail', 'big.example', 'u', 'new');
  const files = await waitFor('the delivery', () => ls(dir).length > 0 && ls(dir));
  assert.equal(files.length, 1);
  const got = fs.readFileSync(path.join(dir, files[0]), 'utf8');
  assert.ok(got.length > INLINE_MAX, `delivered ${got.length} bytes: ${got.slice(0, 300)}`);
  assert.ok(got.includes(`line ${String(Math.ceil((INLINE_MAX * 2) / 64) - 1).padStart(8, '0')}`), 'the last line arrived');
  await t.app.mta.delivery.whenIdle();
  const spool = fs.readdirSync(path.join(t.dataDir, 'spool'));
  assert.deepEqual(spool, [], 'spool file removed after delivery');
});
