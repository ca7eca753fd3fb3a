/**
 * The catalog zone (RFC 9432, server/directory/catalog.ts) with a REAL
 * consumer: Knot DNS configured for the catalog alone (`catalog-role:
 * interpret`, members from a `catalog-template`). A zone the `dcmx` command
 * adds (another process writing the store) is served by Knot without any
 * change to its configuration, with our answers; a zone removed goes away
 * there too. The catalog's SOA refresh is an hour: NOTIFY does it.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { kdigRunner, section, soaSerial, sortedAnswer, status } from './fixture';
import { freeDualPort, startKnot, type Knot } from './knot';
import { waitForAsync } from '../fixtures/wait';
import { memberId } from '../../server/directory/catalog';

const CATALOG = 'catalog.invalid';

let t: TestAppliance;
let knot: Knot | undefined;
let knotPort = 0;
const kdigDcmx = kdigRunner(() => t.app.ports.dns);
const kdigKnot = kdigRunner(() => knotPort);

const dcmx = async (...args: string[]) => {
  const r = await runDcmx(testEnv(t.dataDir), args);
  assert.equal(r.code, 0, `dcmx ${args.join(' ')}: ${r.stderr}`);
};

async function serial(dig: typeof kdigDcmx, zone: string): Promise<number> {
  const r = await dig(zone, 'SOA');
  return status(r.stdout) === 'NOERROR' ? soaSerial(section(r.stdout, 'ANSWER').join('\n')) : -1;
}

/** The catalog by AXFR from dcmx: its records, normalised, the closing SOA dropped. */
async function catalogAxfr(): Promise<string[]> {
  const r = await kdigDcmx('+tcp', CATALOG, 'AXFR');
  const lines = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' ').trim());
  assert.ok(lines.length >= 2, `AXFR of the catalog returned nothing:\n${r.stdout}${r.stderr}`);
  return lines.slice(0, -1);
}

/** Waits until `check` returns undefined; fails with its last complaint and Knot's log. */
async function until(what: string, ms: number, check: () => Promise<string | undefined>): Promise<number> {
  const start = Date.now();
  let complaint: string | undefined;
  await waitForAsync(what, async () => (complaint = knot?.exited ? 'knotd exited' : await check()) === undefined, ms, 100)
    .catch(() => assert.fail(`${what}: ${complaint}\nknot log:\n${knot?.log}`));
  return Date.now() - start;
}

const MEMBER_QUESTIONS: [string, string][] = [['', 'SOA'], ['', 'NS'], ['', 'MX'], ['', 'TXT'], ['_dmarc.', 'TXT'], ['nothere.', 'A']];

/** Knot's answers for `zone` equal ours. */
async function sameAnswers(zone: string): Promise<string | undefined> {
  for (const [prefix, type] of MEMBER_QUESTIONS) {
    const ours = await sortedAnswer(kdigDcmx, prefix + zone, type);
    const theirs = await sortedAnswer(kdigKnot, prefix + zone, type);
    if (ours !== theirs) return `${prefix}${zone} ${type}: knot says ${theirs}, dcmx ${ours}`;
  }
  return undefined;
}

before(async () => {
  knotPort = await freeDualPort();
  t = await startTestAppliance({ DCMX_DNS_CATALOG: `${CATALOG}.`, DCMX_AXFR_ALLOW: '127.0.0.1/32', DCMX_NOTIFY: `127.0.0.1:${knotPort}` });
  await dcmx('domain', 'add', 'example.org');
  knot = await startKnot({ port: knotPort, primaryPort: t.app.ports.dns, zone: CATALOG, catalog: true, dirPrefix: 'dcmx-knot-catalog-' });
  await knot.waitReady(15_000, async () => (/status: \w+/.test((await kdigKnot(CATALOG, 'SOA')).stdout) ? undefined : `no answer on 127.0.0.1@${knotPort}`));
});

after(async () => {
  await knot?.stop();
  await t?.close();
});

describe('the catalog zone (RFC 9432) with Knot as its consumer', () => {
  test('dcmx serves the catalog: version 2, one PTR per zone under zones., a stable id per member', async () => {
    const axfr = await catalogAxfr();
    assert.match(axfr[0], /^catalog\.invalid\. 0 IN SOA invalid\. invalid\. \d+ 3600 600 2147483646 0$/);
    assert.deepEqual(axfr.slice(1), [
      'catalog.invalid. 0 IN NS invalid.',
      'version.catalog.invalid. 0 IN TXT "2"',
      `${memberId('example.org')}.zones.catalog.invalid. 0 IN PTR example.org.`,
    ]);
    assert.match(memberId('example.org'), /^[0-9a-f]{32}$/);
    assert.notEqual(memberId('example.org'), memberId('example.net'));
    assert.equal(status((await kdigDcmx(`zones.${CATALOG}`, 'PTR')).stdout), 'NOERROR', 'zones.<catalog> is an empty non-terminal');
    assert.equal(status((await kdigDcmx(`nothere.${CATALOG}`, 'TXT')).stdout), 'NXDOMAIN');
    // An IXFR is answered (with the whole catalog: it has no journal; RFC 1995 §4).
    const ixfr = await kdigDcmx('+tcp', CATALOG, 'IXFR=1');
    assert.match(ixfr.stdout, /PTR\s+example\.org\./, `IXFR of the catalog:\n${ixfr.stdout}${ixfr.stderr}`);
    // The transfer ACL of every zone (DCMX_AXFR_ALLOW is 127.0.0.1/32 here).
    const denied = await run('dig', ['@127.0.0.1', '-b', '127.0.0.2', '-p', String(t.app.ports.dns), '+time=2', '+tries=1', CATALOG, 'AXFR']);
    assert.match(denied.stdout + denied.stderr, /Transfer failed|REFUSED/);
  });

  test('Knot serves the member zone it learnt from the catalog, with our answers', async () => {
    await until('knot serves example.org from the catalog', 20_000, async () => sameAnswers('example.org'));
  });

  test('a zone added by the dcmx command appears on Knot without hand work, by NOTIFY', async (ctx) => {
    const before = await serial(kdigDcmx, CATALOG);
    await dcmx('domain', 'add', 'example.net');
    let after = before;
    await until('dcmx bumps the catalog serial', 5_000, async () => ((after = await serial(kdigDcmx, CATALOG)) !== before ? undefined : `still ${before}`));
    assert.equal(after, before + 1, 'one zone added, one new version of the catalog');
    const ms = await until('knot serves example.net', 10_000, async () => {
      const s = await serial(kdigKnot, 'example.net');
      return s === await serial(kdigDcmx, 'example.net') ? sameAnswers('example.net') : `knot serves example.net at serial ${s}`;
    });
    ctx.diagnostic(`knot served example.net ${ms} ms after the catalog's new serial (its SOA refresh is 3600 s)`);
    assert.ok(t.app.notifier.acked.some((a) => a.zone === CATALOG && a.serial === after), `the catalog's NOTIFY acknowledged: ${JSON.stringify(t.app.notifier.acked)}`);
    // A change inside a zone is no new version of the catalog.
    const zoneBefore = await serial(kdigDcmx, 'example.net');
    await dcmx('domain', 'add', 'shop.example.net');
    await until('dcmx serves the new serial of example.net', 5_000, async () =>
      (await serial(kdigDcmx, 'example.net') !== zoneBefore ? undefined : `still ${zoneBefore}`));
    assert.equal(await serial(kdigDcmx, CATALOG), after);
  });

  test('a zone withdrawn by the dcmx command (its SOA deleted) goes away from Knot', async () => {
    const before = await serial(kdigDcmx, CATALOG);
    const ldif = path.join(t.dataDir, 'withdraw.ldif');
    fs.writeFileSync(ldif, 'dn: dc=example,dc=net,o=internet\nchangetype: modify\ndelete: sOARecord\n-\ndelete: nSRecord\n-\n');
    await dcmx('ldif', 'import', ldif);
    await until('the catalog no longer lists example.net', 5_000, async () => {
      const axfr = await catalogAxfr();
      return axfr.some((l) => / PTR example\.net\.$/.test(l)) ? `catalog: ${axfr.join(' | ')}` : undefined;
    });
    // A dcmx command's write reaches each serving thread when it next reads the change log: the
    // AXFR above (TCP) and this SOA query (UDP) may be answered by different threads.
    await until('the catalog\'s serial moved on by one', 5_000, async () => {
      const now = await serial(kdigDcmx, CATALOG);
      return now === before + 1 ? undefined : `catalog serial ${now}, ${before} before the withdrawal`;
    });
    await until('knot stops serving example.net', 10_000, async () => {
      const r = await kdigKnot('example.net', 'SOA');
      return status(r.stdout) === 'REFUSED' ? undefined : `knot answers example.net SOA with ${status(r.stdout)}`;
    });
    assert.equal(await sameAnswers('example.org'), undefined, 'example.org is still served alike');
  });
});
