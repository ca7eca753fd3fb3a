/**
 * Request controls on bind, modify and extended operations, as OpenLDAP's
 * clients send them: unknown non-critical ones are ignored, unknown critical
 * ones get 12 (RFC 4511 §4.1.11) — and none of them costs the connection.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, ldapResultCode, run, startTestAppliance, type TestAppliance } from '../helpers';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
});
after(async () => t.close());

test('a password-policy request control (as SSSD and nslcd send) on bind, Who am I? and modify is ignored', async () => {
  const who = await run('ldapwhoami', [...adminArgs(t), '-e', 'ppolicy']);
  assert.equal(who.code, 0, who.stderr);
  assert.equal(who.stdout.trim(), `dn:${t.adminDN}`);
  const mod = await run('ldapmodify', [...adminArgs(t), '-e', 'ppolicy'], 'dn: o=internet\nchangetype: modify\nreplace: description\ndescription: with ppolicy\n');
  assert.equal(mod.code, 0, mod.stderr);
  const s = await run('ldapsearch', [...adminArgs(t), '-e', 'ppolicy', '-LLL', '-b', 'o=internet', '-s', 'base', 'description']);
  assert.match(s.stdout, /^description: with ppolicy$/m);
});

test('an unsupported critical control gets 12 on modify and bind; the connection is answered, not dropped', async () => {
  const mod = await run('ldapmodify', [...adminArgs(t), '-e', '!relax'], 'dn: o=internet\nchangetype: modify\nreplace: description\ndescription: never\n');
  assert.equal(ldapResultCode(mod), 12, mod.stderr);
  assert.match(mod.stderr, /critical control 1\.3\.6\.1\.4\.1\.4203\.666\.5\.12 is not supported/);
  const who = await run('ldapwhoami', [...adminArgs(t), '-e', '!bauthzid']);
  assert.equal(ldapResultCode(who), 12, who.stdout + who.stderr);
  const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '-s', 'base', 'description']);
  assert.match(s.stdout, /^description: with ppolicy$/m, 'the refused modify wrote nothing');
});
