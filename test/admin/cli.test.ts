/**
 * `dcmx ldif import|export` against the same store a running appliance
 * serves: imported entries are visible over LDAP at once, errors name the
 * LDIF line, and an export imports back into a fresh store unchanged.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adminArgs, run, runDcmx, startTestAppliance, tempDir, testEnv, type TestAppliance } from '../helpers';
import { track } from '../fixtures/children';

const CLI = path.resolve(__dirname, '..', '..', 'server', 'admin', 'cli.js');
let t: TestAppliance;
let work: string;

before(async () => {
  t = await startTestAppliance();
  work = tempDir();
});
after(async () => {
  await t.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const dcmx = (dataDir: string, ...args: string[]) => runDcmx(testEnv(dataDir), args, 300_000);

test('import 3,000 entries while the server runs; they are searchable at once', async () => {
  const file = path.join(work, 'big.ldif');
  let ldif = 'version: 1\n\ndn: dc=org,o=internet\nobjectClass: domain\ndc: org\n\n';
  for (let i = 0; i < 1000; i++) {
    ldif += `dn: dc=d${i},dc=org,o=internet\nobjectClass: dNSDomain2\nobjectClass: mailDomain\ndc: d${i}\nmXRecord: 10 mx.d${i}.org.\n\n`;
    ldif += `dn: ou=people,dc=d${i},dc=org,o=internet\nobjectClass: organizationalUnit\nou: people\n\n`;
    ldif += `dn: uid=u${i},ou=people,dc=d${i},dc=org,o=internet\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: u${i}\ncn: U ${i}\nsn: U\nmail: u${i}@d${i}.org\n${i % 100 === 0 ? `userPassword: pw-${i}\n` : ''}\n`;
  }
  fs.writeFileSync(file, ldif);
  const r = await dcmx(t.dataDir, 'ldif', 'import', file);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /imported 3001 records/);
  const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '(mail=u999@d999.org)', 'dn']);
  assert.match(s.stdout, /^dn: uid=u999,ou=people,dc=d999,dc=org,o=internet$/m);
  const w = await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', 'uid=u500,ou=people,dc=d500,dc=org,o=internet', '-w', 'pw-500']);
  assert.equal(w.code, 0, 'imported clear-text passwords are hashed and verify');
});

test('a bad record stops the import with its line number; --continue goes on', async () => {
  const file = path.join(work, 'bad.ldif');
  fs.writeFileSync(file, 'dn: dc=ok1,o=internet\nobjectClass: domain\ndc: ok1\n\ndn: dc=bad,o=internet\nobjectClass: domain\ndc: bad\nsn: x\n\ndn: dc=ok2,o=internet\nobjectClass: domain\ndc: ok2\n');
  let r = await dcmx(t.dataDir, 'ldif', 'import', file);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /line 5/);
  assert.match(r.stderr, /not allowed/);
  r = await dcmx(t.dataDir, 'ldif', 'import', '--continue', '--skip-existing', file);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /1 failed/);
  const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '-s', 'one', '(|(dc=ok1)(dc=ok2)(dc=bad))', 'dc']);
  assert.equal((s.stdout.match(/^dn: /gm) ?? []).length, 2);
});

test('change records apply through the same write path', async () => {
  const file = path.join(work, 'changes.ldif');
  fs.writeFileSync(file, 'dn: dc=ok1,o=internet\nchangetype: modify\nadd: description\ndescription: changed by LDIF\n-\n\ndn: dc=ok2,o=internet\nchangetype: delete\n');
  const r = await dcmx(t.dataDir, 'ldif', 'import', file);
  assert.equal(r.code, 0, r.stderr);
  const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '-s', 'one', '(|(dc=ok1)(dc=ok2))', 'description']);
  assert.match(s.stdout, /^description: changed by LDIF$/m);
  assert.doesNotMatch(s.stdout, /dc=ok2/);
  const cl = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'cn=changelog', '-s', 'one', '(targetDN=dc=ok2,o=internet)', 'changeType']);
  assert.match(cl.stdout, /^changeType: delete$/m);
});

test('export round-trips into a fresh store', async () => {
  const exp = await dcmx(t.dataDir, 'ldif', 'export');
  assert.equal(exp.code, 0, exp.stderr);
  assert.match(exp.stdout, /^dn: uid=u7,ou=people,dc=d7,dc=org,o=internet$/m);
  assert.match(exp.stdout, /^entryUUID: /m);
  const file = path.join(work, 'export.ldif');
  fs.writeFileSync(file, exp.stdout);
  const fresh = tempDir();
  const imp = await dcmx(fresh, 'ldif', 'import', file);
  assert.equal(imp.code, 0, imp.stderr);
  const again = await dcmx(fresh, 'ldif', 'export');
  assert.equal(again.stdout, exp.stdout, 'byte-identical after a round trip');
  fs.rmSync(fresh, { recursive: true, force: true });
});

test('a reader that stops early (ldif export | head) ends the export quietly with status 141', async () => {
  // 3,000 entries are far more than a pipe holds: the export writes on after head has gone.
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const { execFile } = require('node:child_process') as typeof import('node:child_process');
    const script = 'set -o pipefail; "$0" "$1" ldif export | head -n 1';
    track(execFile('bash', ['-c', script, process.execPath, CLI], { env: { ...process.env, ...testEnv(t.dataDir) } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    }));
  });
  assert.equal(r.stdout, 'version: 1\n');
  assert.equal(r.stderr, '', 'no stack trace, no summary of an export cut short');
  assert.equal(r.code, 141, 'the status of a writer killed by SIGPIPE, so pipefail notices');
});

test('usage errors exit 64', async () => {
  const r = await dcmx(t.dataDir, 'frobnicate');
  assert.equal(r.code, 64);
  assert.match(r.stderr, /usage:/);
});

test('on a remote transfer unit\'s data dir (DCMX_ROLE=mta) the dcmx command refuses, naming DCMX_ROLE, and writes nothing', async () => {
  const dir = fs.mkdtempSync(path.join(work, 'unit-'));
  const r = await runDcmx(testEnv(dir, { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'ldap://127.0.0.1:9' }), ['routes']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^dcmx: bad configuration: DCMX_ROLE: mta: .* holds no directory/);
  assert.deepEqual(fs.readdirSync(dir), []);
});
