/**
 * Interop with a REAL secondary: Knot DNS (knotd) transfers a zone that dcmx
 * serves, is kept current by dcmx's NOTIFY, and ends up with the same data
 * after single changes and after a burst of changes.
 *
 * knotd runs unprivileged-style (as whoever runs the tests, no `user:`), on
 * loopback, with every file it writes (zone file, journal, timers, control
 * socket) in a temporary directory that is removed at the end. It is killed
 * at the end and on failure. If knotd cannot run here, the suite fails with
 * a message saying why (it is never skipped).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adminArgs, run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { CAA_ENTRY, exampleOrgZone, kdigRunner, section, soaSerial, sortedAnswer, status } from './fixture';
import { freeDualPort, startKnot, type Knot } from './knot';
import { waitForAsync } from '../fixtures/wait';

const ZONE_NAME = 'example.org';

const TXT = `dn: dc=txt,dc=example,dc=org,o=internet
objectClass: dNSDomain2
dc: txt
tXTRecord: "hello world"
tXTRecord: "second string" "in one record"
`;

const ZONE = exampleOrgZone({ extra: [TXT, CAA_ENTRY] });

// ------------------------------------------------------------------ fixtures

let t: TestAppliance;
let dnsPort = 0;
let knotPort = 0;
let knot: Knot | undefined;
/** Everything knotd has logged so far. */
const knotLog = (): string => knot?.log ?? '';

// ------------------------------------------------------------------ queries

const kdigAt = (port: number, ...args: string[]) => kdigRunner(port)(...args);
const kdigKnot = kdigRunner(() => knotPort);
const kdigDcmx = kdigRunner(() => dnsPort);

async function serialOf(port: number): Promise<number> {
  const r = await kdigAt(port, ZONE_NAME, 'SOA');
  return status(r.stdout) === 'NOERROR' ? soaSerial(section(r.stdout, 'ANSWER').join('\n')) : -1;
}

/** The answer of a server to name/type: status plus the sorted ANSWER section. */
const answer = (port: number, name: string, type: string): Promise<string> => sortedAnswer(kdigRunner(port), name, type);

/**
 * An RRSIG line without its validity window and signature: ECDSA signs with
 * a random nonce, and each serving thread signs its own copy of a version,
 * so two transfers of the same signed data may carry different signatures.
 */
function unsigned(line: string): string {
  const f = line.split(' ');
  return f[3] === 'RRSIG' ? [...f.slice(0, 8), ...f.slice(10, 12)].join(' ') : line;
}

/** The whole zone by AXFR, as a sorted list of normalised records (trailing SOA dropped; RRSIGs as {@link unsigned}). */
async function axfr(port: number): Promise<string[]> {
  const r = await kdigAt(port, '+tcp', ZONE_NAME, 'AXFR');
  const lines = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => unsigned(l.replace(/\s+/g, ' ').trim()));
  assert.ok(lines.length >= 2, `AXFR from port ${port} returned nothing:\n${r.stdout}${r.stderr}`);
  assert.match(lines[0], / SOA /);
  assert.match(lines[lines.length - 1], / SOA /);
  return lines.slice(0, -1).sort();
}

/** Polls until `check` returns undefined (done) or the deadline passes; returns the last complaint. */
async function until(ms: number, check: () => Promise<string | undefined>): Promise<{ failure?: string; elapsed: number }> {
  const start = Date.now();
  let failure: string | undefined;
  await waitForAsync('knotd to catch up', async () => {
    const exited = knot?.exited;
    if (exited) failure = `knotd exited (code ${exited.code}, signal ${exited.signal})`;
    else failure = await check();
    return failure === undefined || !!exited;
  }, ms, 100).catch(() => undefined);
  return { failure, elapsed: Date.now() - start };
}

/** Lines of knot's log about our zone, from offset `from`. */
function zoneLog(from: number): string[] {
  return knotLog().slice(from).split('\n').filter((l) => l.includes(`[${ZONE_NAME}.]`));
}

/** Which transfer kinds knot logged as incoming, from offset `from`. */
function transfersSince(from: number): { kinds: string[]; fallback: boolean; lines: string[] } {
  const lines = zoneLog(from).filter((l) => /\b(AXFR|IXFR)\b, incoming/.test(l) || /refresh, remote/.test(l) || /fallback|AXFR-style/i.test(l));
  const kinds = lines.filter((l) => /\b(AXFR|IXFR), incoming, .*finished/.test(l)).map((l) => /\b(AXFR|IXFR), incoming/.exec(l)![1]);
  // An IXFR request answered with the whole zone is logged by knot as "receiving AXFR-style IXFR".
  const axfrStyle = lines.some((l) => /AXFR-style/i.test(l));
  return { kinds: axfrStyle ? kinds.map((k) => (k === 'IXFR' ? 'IXFR (AXFR-style, whole zone)' : k)) : kinds, fallback: lines.some((l) => /fallback/i.test(l)), lines };
}

/** Warnings and errors knot logged about our zone since `from`. */
function problemsSince(from: number): string[] {
  return zoneLog(from).filter((l) => /\b(warning|error|critical):/.test(l));
}

const ldapmodify = async (ldif: string) => {
  const r = await run('ldapmodify', adminArgs(t), ldif);
  assert.equal(r.code, 0, `ldapmodify failed:\n${r.stderr}`);
};

// ------------------------------------------------------------------ set-up

before(async () => {
  knotPort = await freeDualPort();
  t = await startTestAppliance({ DCMX_AXFR_ALLOW: '127.0.0.1/32', DCMX_NOTIFY: `127.0.0.1:${knotPort}` });
  dnsPort = t.app.ports.dns;
  const r = await run('ldapadd', adminArgs(t), ZONE);
  assert.equal(r.code, 0, r.stderr);
  knot = await startKnot({ port: knotPort, primaryPort: dnsPort, zone: ZONE_NAME, logLevel: 'debug', allowTransfer: true });
  // Ready when it answers on its port (SERVFAIL for a zone it has not loaded yet is fine).
  await knot.waitReady(15_000, async () =>
    /status: \w+/.test((await kdigKnot(ZONE_NAME, 'SOA')).stdout) ? undefined : `no answer on 127.0.0.1@${knotPort}`);
});

after(async () => {
  await knot?.stop();
  if (process.env.DCMX_KNOT_LOG) fs.writeFileSync(process.env.DCMX_KNOT_LOG, knotLog());
  await t?.close();
});

// ------------------------------------------------------------------ the tests

describe('Knot as a secondary of dcmx (AXFR/IXFR + NOTIFY)', () => {
  const names: [string, string][] = [
    [ZONE_NAME, 'SOA'], [ZONE_NAME, 'NS'], [ZONE_NAME, 'A'], [ZONE_NAME, 'MX'], [ZONE_NAME, 'TXT'],
    ['mx.example.org', 'A'], ['ns1.example.org', 'A'], ['www.example.org', 'A'], ['www.example.org', 'CNAME'],
    ['txt.example.org', 'TXT'], ['caa.example.org', 'CAA'], ['caa.example.org', 'SRV'], ['caa.example.org', 'AAAA'],
    ['nothere.example.org', 'A'],
  ];

  async function sameAnswers(extra: [string, string][] = []): Promise<void> {
    for (const [n, ty] of [...names, ...extra]) {
      assert.equal(await answer(knotPort, n, ty), await answer(dnsPort, n, ty), `knot and dcmx disagree on ${n} ${ty}`);
    }
    assert.deepEqual(await axfr(knotPort), await axfr(dnsPort), 'the zone on knot (AXFR from knot) equals the zone on dcmx');
  }

  test('1. knot transfers the zone; its answers and its AXFR equal ours', async (ctx) => {
    const want = await serialOf(dnsPort);
    assert.ok(want > 100, `dcmx serial ${want}`);
    const res = await until(20_000, async () => {
      const got = await serialOf(knotPort);
      return got === want ? undefined : `knot serves serial ${got}, dcmx ${want}`;
    });
    assert.equal(res.failure, undefined, `${res.failure}\nknot log:\n${zoneLog(0).join('\n')}`);
    ctx.diagnostic(`initial transfer of serial ${want} done after ${res.elapsed} ms; knot: ${transfersSince(0).lines.join(' | ')}`);
    await sameAnswers();
    assert.equal((await answer(knotPort, 'caa.example.org', 'CAA')).split('\n')[1], 'caa.example.org. 300 IN CAA 0 issue "letsencrypt.org"');
    assert.equal((await answer(knotPort, ZONE_NAME, 'MX')).split('\n')[1], 'example.org. 300 IN MX 10 mx.example.org.');
    assert.equal((await answer(knotPort, 'nothere.example.org', 'A')).split('\n')[0], 'NXDOMAIN');
    // Knot stores what it transferred in our temporary directory, nowhere else.
    const res2 = await until(5_000, async () => (fs.existsSync(path.join(knot!.dir, 'zones', `${ZONE_NAME}.zone`)) ? undefined : 'no zone file yet'));
    assert.equal(res2.failure, undefined, 'knot wrote its zone file into the temporary directory');
  });

  let secondTransferLog = 0;

  test('2. a change over LDAP reaches knot by NOTIFY, long before its refresh timer', async (ctx) => {
    const before = await serialOf(dnsPort);
    secondTransferLog = knotLog().length;
    await ldapmodify(`dn: dc=mx,dc=example,dc=org,o=internet
changetype: modify
replace: aRecord
aRecord: 198.51.100.7

dn: dc=new,dc=example,dc=org,o=internet
changetype: add
objectClass: dNSDomain2
dc: new
aRecord: 192.0.2.77
tXTRecord: "added over LDAP"
`);
    const want = await serialOf(dnsPort);
    assert.equal(want, before + 2, 'two writes, two bumps');
    assert.deepEqual(section((await kdigDcmx('new.example.org', 'A')).stdout, 'ANSWER'), ['new.example.org. 300 IN A 192.0.2.77']);

    const res = await until(15_000, async () => {
      const got = await serialOf(knotPort);
      if (got !== want) return `knot serves serial ${got}, dcmx ${want}`;
      const mx = section((await kdigKnot('mx.example.org', 'A')).stdout, 'ANSWER');
      if (mx.join() !== 'mx.example.org. 300 IN A 198.51.100.7') return `knot mx.example.org A: ${mx.join()}`;
      const nw = section((await kdigKnot('new.example.org', 'A')).stdout, 'ANSWER');
      if (nw.join() !== 'new.example.org. 300 IN A 192.0.2.77') return `knot new.example.org A: ${nw.join()}`;
      return undefined;
    });
    assert.equal(res.failure, undefined, `${res.failure}\nknot log since the change:\n${zoneLog(secondTransferLog).join('\n')}`);
    ctx.diagnostic(`knot had serial ${want} ${res.elapsed} ms after the LDAP write (SOA refresh is 3600 s)`);
    assert.ok(zoneLog(secondTransferLog).some((l) => /notify, incoming/i.test(l)), `knot logged no incoming NOTIFY:\n${zoneLog(secondTransferLog).join('\n')}`);
    await sameAnswers([['new.example.org', 'A'], ['new.example.org', 'TXT']]);

    // The notifier recorded knot's acknowledgement of the final serial.
    const acked = await until(5_000, async () =>
      t.app.notifier.acked.some((a) => a.zone.replace(/\.$/, '') === ZONE_NAME && a.serial === want && a.target.port === knotPort)
        ? undefined : `acked: ${JSON.stringify(t.app.notifier.acked)}`);
    assert.equal(acked.failure, undefined, acked.failure);
  });

  test('3. the second transfer: IXFR or AXFR, with the right records either way', async (ctx) => {
    const tr = transfersSince(secondTransferLog);
    assert.ok(tr.kinds.length > 0, `knot logged no finished incoming transfer:\n${zoneLog(secondTransferLog).join('\n')}`);
    ctx.diagnostic(`incoming transfers after the change: ${tr.kinds.join(', ')}${tr.fallback ? ' (knot fell back from IXFR to AXFR)' : ''}`);
    for (const l of tr.lines) ctx.diagnostic(`knot: ${l.replace(/^\S+\s+/, '')}`);
    const problems = problemsSince(secondTransferLog);
    for (const p of problems) ctx.diagnostic(`knot problem: ${p}`);
    // Records are right either way (checked in 2 and again here).
    assert.deepEqual(await axfr(knotPort), await axfr(dnsPort));
  });

  test('4. a burst of 20 changes ends with knot serving the final serial and records', async (ctx) => {
    const from = knotLog().length;
    const before = await serialOf(dnsPort);
    const ops: string[] = [];
    const hosts: string[] = [];
    let lastMx = '';
    for (let i = 0; i < 20; i++) {
      if (i === 10) {
        ops.push('dn: dc=new,dc=example,dc=org,o=internet\nchangetype: delete\n');
      } else if (i % 5 === 4) {
        hosts.push(`h${i}`);
        ops.push(`dn: dc=h${i},dc=example,dc=org,o=internet\nchangetype: add\nobjectClass: dNSDomain2\ndc: h${i}\naRecord: 203.0.113.${i}\n`);
      } else if (i === 7) {
        ops.push('dn: dc=txt,dc=example,dc=org,o=internet\nchangetype: modify\ndelete: tXTRecord\ntXTRecord: "hello world"\n-\nadd: tXTRecord\ntXTRecord: "goodbye world"\n');
      } else {
        lastMx = `198.51.100.${100 + i}`;
        ops.push(`dn: dc=mx,dc=example,dc=org,o=internet\nchangetype: modify\nreplace: aRecord\naRecord: ${lastMx}\n`);
      }
    }
    await ldapmodify(ops.join('\n'));
    const want = await serialOf(dnsPort);
    assert.equal(want, before + 20, 'twenty writes, twenty bumps');

    const res = await until(20_000, async () => {
      const got = await serialOf(knotPort);
      return got === want ? undefined : `knot serves serial ${got}, dcmx ${want}`;
    });
    assert.equal(res.failure, undefined, `${res.failure}\nknot log since the burst:\n${zoneLog(from).join('\n')}`);
    ctx.diagnostic(`knot had the final serial ${want} ${res.elapsed} ms after the burst`);
    const tr = transfersSince(from);
    ctx.diagnostic(`incoming transfers during the burst: ${tr.kinds.join(', ') || 'none logged'}${tr.fallback ? ' (with fallback to AXFR)' : ''}`);
    for (const l of tr.lines) ctx.diagnostic(`knot: ${l.replace(/^\S+\s+/, '')}`);
    for (const p of problemsSince(from)) ctx.diagnostic(`knot problem: ${p}`);

    assert.deepEqual(section((await kdigKnot('mx.example.org', 'A')).stdout, 'ANSWER'), [`mx.example.org. 300 IN A ${lastMx}`]);
    for (const h of hosts) {
      const n = Number(h.slice(1));
      assert.deepEqual(section((await kdigKnot(`${h}.example.org`, 'A')).stdout, 'ANSWER'), [`${h}.example.org. 300 IN A 203.0.113.${n}`]);
    }
    assert.equal(status((await kdigKnot('new.example.org', 'A')).stdout), 'NXDOMAIN');
    assert.deepEqual(section((await kdigKnot('txt.example.org', 'TXT')).stdout, 'ANSWER').sort(),
      ['txt.example.org. 300 IN TXT "goodbye world"', 'txt.example.org. 300 IN TXT "second string" "in one record"']);
    await sameAnswers([['new.example.org', 'A'], ...hosts.map((h): [string, string] => [`${h}.example.org`, 'A'])]);

    const acked = await until(5_000, async () =>
      t.app.notifier.acked.some((a) => a.zone.replace(/\.$/, '') === ZONE_NAME && a.serial === want) ? undefined : 'final serial not acknowledged');
    assert.equal(acked.failure, undefined, `${acked.failure}: ${JSON.stringify(t.app.notifier.acked.slice(-5))}`);
  });

  test('5. changes made by the dcmx command (another process) reach knot by NOTIFY, each once', async (ctx) => {
    /** Runs `dcmx` against the appliance's store, then waits for knot to serve dcmx's serial with `check` true. */
    const byCli = async (what: string, args: string[], check: () => Promise<string | undefined>) => {
      const from = knotLog().length;
      const before = await serialOf(dnsPort);
      const ackedBefore = t.app.notifier.acked.length;
      const r = await runDcmx(testEnv(t.dataDir), args);
      assert.equal(r.code, 0, `dcmx ${args.join(' ')}: ${r.stderr}`);
      // The appliance picks the other process's commit up from the store (writes.ts watchOtherWriters) within 100 ms.
      let want = -1;
      const served = await until(5_000, async () => ((want = await serialOf(dnsPort)) !== before ? undefined : `dcmx still serves ${before}`));
      assert.equal(served.failure, undefined, `${what}: ${served.failure}`);
      const res = await until(10_000, async () => {
        const got = await serialOf(knotPort);
        return got !== want ? `knot serves serial ${got}, dcmx ${want}` : await check();
      });
      assert.equal(res.failure, undefined, `${what}: ${res.failure}\nknot log since:\n${zoneLog(from).join('\n')}`);
      ctx.diagnostic(`${what}: knot had serial ${want} ${res.elapsed} ms after the command (SOA refresh is 3600 s)`);
      assert.ok(zoneLog(from).some((l) => /notify, incoming/i.test(l)), `${what}: knot logged no incoming NOTIFY:\n${zoneLog(from).join('\n')}`);
      const acked = await until(5_000, async () =>
        t.app.notifier.acked.slice(ackedBefore).some((a) => a.zone === ZONE_NAME && a.serial === want) ? undefined : 'not acknowledged');
      assert.equal(acked.failure, undefined, `${what}: NOTIFY of serial ${want}: ${acked.failure}: ${JSON.stringify(t.app.notifier.acked.slice(ackedBefore))}`);
      // Once per change: one NOTIFY of the zone for the command's one commit, not one per thread or per row.
      const sent = t.app.notifier.acked.slice(ackedBefore).filter((a) => a.zone === ZONE_NAME);
      assert.deepEqual(sent.map((a) => a.serial), [want], `${what}: NOTIFYs acknowledged`);
    };

    const ldif = path.join(t.dataDir, 'change.ldif');
    fs.writeFileSync(ldif, 'dn: dc=mx,dc=example,dc=org,o=internet\nchangetype: modify\nreplace: aRecord\naRecord: 198.51.100.42\n-\n');
    await byCli('dcmx ldif import', ['ldif', 'import', ldif], async () => {
      const mx = section((await kdigKnot('mx.example.org', 'A')).stdout, 'ANSWER').join();
      return mx === 'mx.example.org. 300 IN A 198.51.100.42' ? undefined : `knot mx.example.org A: ${mx}`;
    });
    await byCli('dcmx domain add', ['domain', 'add', 'shop.example.org'], async () => {
      const mx = section((await kdigKnot('shop.example.org', 'MX')).stdout, 'ANSWER').join();
      return mx === 'shop.example.org. 300 IN MX 10 mx.dcmx.test.' ? undefined : `knot shop.example.org MX: ${mx}`;
    });
    await sameAnswers([['shop.example.org', 'MX'], ['shop.example.org', 'TXT'], ['_dmarc.shop.example.org', 'TXT']]);
  });
});
