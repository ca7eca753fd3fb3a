/**
 * The zones compiled in memory (server/directory/zone-index.ts) follow every
 * write: a query sent after a write's reply sees the write, on both serving
 * threads (DCMX_THREADS=2), over UDP (dig) and TCP (kdig). Each case first
 * asks the old answer (so that the compiled copy and the answer cache hold
 * it, a negative one included), writes, then asks again at once: a name
 * added, one deleted, a zone born, a wildcard added under a cached
 * NXDOMAIN, the apex TTL changed (the default TTL of every name below it),
 * a zone cut made at an existing name, a subtree renamed, and a change made
 * by another process (the `dcmx` CLI).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adminArgs, caughtUp, run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { digRunner, exampleOrgZone, kdigRunner, section, status } from './fixture';

let t: TestAppliance;
const dig = digRunner(() => t.app.ports.dns);
const kdig = kdigRunner(() => t.app.ports.dns);

/** Asked of each door this many times: the kernel spreads new sockets over both threads. */
const FAN = 6;

before(async () => {
  t = await startTestAppliance({ DCMX_THREADS: '2' });
  const r = await run('ldapadd', adminArgs(t), exampleOrgZone({
    extra: [
      'dn: dc=sub,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: sub\naRecord: 192.0.2.70\n',
      'dn: dc=deep,dc=sub,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: deep\naRecord: 192.0.2.71\n',
    ],
  }));
  assert.equal(r.code, 0, r.stderr);
});
after(async () => t?.close());

/** `status|answer lines` of one query, the TTL kept (dig and kdig print the same line form once split on white space). */
async function ask(tcp: boolean, name: string, type: string): Promise<string> {
  const r = await (tcp ? kdig : dig)(name, type);
  const rows = [...section(r.stdout, 'ANSWER'), ...section(r.stdout, 'AUTHORITY').filter((l) => / SOA /.test(l))];
  return [status(r.stdout), ...rows.map((l) => l.split(/\s+/).join(' ')).sort()].join('|');
}

/** Asks `name`/`type` FAN times over each transport, all at once; every answer must pass `check`. */
async function everywhere(name: string, type: string, check: (answer: string) => void): Promise<void> {
  const asks: Promise<void>[] = [];
  for (let k = 0; k < FAN; k++) for (const tcp of [false, true]) asks.push(ask(tcp, name, type).then(check));
  await Promise.all(asks);
}

async function ldapmodify(ldif: string): Promise<void> {
  const r = await run('ldapmodify', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
}

const Z = 'dc=example,dc=org,o=internet';

describe('compiled zones follow each write at once, on every thread', () => {
  test('a name added, then deleted', async () => {
    await everywhere('new.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|example\.org\. \d+ IN SOA /));
    await ldapmodify(`dn: dc=new,${Z}\nchangetype: add\nobjectClass: dNSDomain2\ndc: new\naRecord: 192.0.2.80\n`);
    await everywhere('new.example.org', 'A', (a) => assert.equal(a, 'NOERROR|new.example.org. 300 IN A 192.0.2.80'));
    await ldapmodify(`dn: dc=new,${Z}\nchangetype: delete\n`);
    await everywhere('new.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|example\.org\. \d+ IN SOA /));
  });

  test('a zone born, below a name that was refused', async () => {
    await everywhere('born.org', 'SOA', (a) => assert.equal(a, 'REFUSED'));
    await everywhere('www.born.org', 'A', (a) => assert.equal(a, 'REFUSED'));
    await ldapmodify([
      'dn: dc=born,dc=org,o=internet\nchangetype: add\nobjectClass: dNSDomain2\ndc: born\ndNSTTL: 120\n' +
        'sOARecord: ns1.born.org. hostmaster.born.org. 7 3600 900 604800 60\nnSRecord: ns1.born.org.\n',
      'dn: dc=www,dc=born,dc=org,o=internet\nchangetype: add\nobjectClass: dNSDomain2\ndc: www\naRecord: 192.0.2.90\n',
    ].join('\n'));
    await everywhere('born.org', 'SOA', (a) => assert.match(a, /^NOERROR\|born\.org\. 120 IN SOA ns1\.born\.org\. hostmaster\.born\.org\. \d+ /));
    await everywhere('www.born.org', 'A', (a) => assert.equal(a, 'NOERROR|www.born.org. 120 IN A 192.0.2.90'));
  });

  test('a wildcard added under a cached NXDOMAIN', async () => {
    await everywhere('anything.sub.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|/));
    await ldapmodify(`dn: dc=*,dc=sub,${Z}\nchangetype: add\nobjectClass: dNSDomain2\ndc: *\naRecord: 192.0.2.99\n`);
    await everywhere('anything.sub.example.org', 'A', (a) => assert.equal(a, 'NOERROR|anything.sub.example.org. 300 IN A 192.0.2.99'));
    await ldapmodify(`dn: dc=*,dc=sub,${Z}\nchangetype: delete\n`);
    await everywhere('anything.sub.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|/));
  });

  test('the apex TTL changed: the default TTL of every name below it', async () => {
    await everywhere('deep.sub.example.org', 'A', (a) => assert.equal(a, 'NOERROR|deep.sub.example.org. 300 IN A 192.0.2.71'));
    await ldapmodify(`dn: ${Z}\nchangetype: modify\nreplace: dNSTTL\ndNSTTL: 900\n`);
    await everywhere('deep.sub.example.org', 'A', (a) => assert.equal(a, 'NOERROR|deep.sub.example.org. 900 IN A 192.0.2.71'));
    await everywhere('example.org', 'MX', (a) => assert.equal(a, 'NOERROR|example.org. 900 IN MX 10 mx.example.org.'));
    await ldapmodify(`dn: ${Z}\nchangetype: modify\nreplace: dNSTTL\ndNSTTL: 300\n`);
    await everywhere('deep.sub.example.org', 'A', (a) => assert.equal(a, 'NOERROR|deep.sub.example.org. 300 IN A 192.0.2.71'));
  });

  test('a zone made at an existing name: the names below it move into it', async () => {
    await everywhere('gone.deep.sub.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|example\.org\. \d+ IN SOA /));
    await ldapmodify(`dn: dc=sub,${Z}\nchangetype: modify\nadd: sOARecord\nsOARecord: ns1.example.org. hostmaster.sub.example.org. 1 3600 900 604800 30\n-\nadd: dNSTTL\ndNSTTL: 45\n`);
    await everywhere('gone.deep.sub.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|sub\.example\.org\. 30 IN SOA /));
    await everywhere('deep.sub.example.org', 'A', (a) => assert.equal(a, 'NOERROR|deep.sub.example.org. 45 IN A 192.0.2.71'));
    await ldapmodify(`dn: dc=sub,${Z}\nchangetype: modify\ndelete: sOARecord\n-\ndelete: dNSTTL\n`);
    await everywhere('deep.sub.example.org', 'A', (a) => assert.equal(a, 'NOERROR|deep.sub.example.org. 300 IN A 192.0.2.71'));
    await everywhere('gone.deep.sub.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|example\.org\. \d+ IN SOA /));
  });

  test('a subtree renamed: its names leave the old place and answer at the new one', async () => {
    await ldapmodify(`dn: dc=sub,${Z}\nchangetype: modrdn\nnewrdn: dc=moved\ndeleteoldrdn: 1\n`);
    await everywhere('deep.sub.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|/));
    await everywhere('deep.moved.example.org', 'A', (a) => assert.equal(a, 'NOERROR|deep.moved.example.org. 300 IN A 192.0.2.71'));
    await ldapmodify(`dn: dc=moved,${Z}\nchangetype: modrdn\nnewrdn: dc=sub\ndeleteoldrdn: 1\n`);
    await everywhere('deep.moved.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|/));
    await everywhere('deep.sub.example.org', 'A', (a) => assert.equal(a, 'NOERROR|deep.sub.example.org. 300 IN A 192.0.2.71'));
  });

  test('a change made by another process (dcmx ldif import)', async () => {
    await everywhere('cli.example.org', 'A', (a) => assert.match(a, /^NXDOMAIN\|/));
    const file = path.join(t.dataDir, 'cli.ldif');
    fs.writeFileSync(file, `dn: dc=cli,${Z}\nobjectClass: dNSDomain2\ndc: cli\naRecord: 192.0.2.77\n`);
    const r = await runDcmx(testEnv(t.dataDir), ['ldif', 'import', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // The appliance learns of another process's commit by watching the store (writes.ts watchOtherWriters): from then on.
    await caughtUp(t);
    await everywhere('cli.example.org', 'A', (a) => assert.equal(a, 'NOERROR|cli.example.org. 300 IN A 192.0.2.77'));
  });
});
