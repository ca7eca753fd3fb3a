/**
 * The DNS answer cache drops, on each write, the answers that write can
 * change and keeps the others (server/dns/answer-cache.ts). Every case
 * caches an answer (a second query is a cache hit), writes over LDAP or with
 * the `dcmx` CLI, and asks again: an invalidation narrower than the write
 * reaches would serve the old answer. Then: answers the write cannot change
 * are still served from the cache; two serving threads and another process
 * (the CLI) keep "a query after the write's reply sees the write".
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adminArgs, caughtUp, run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { digRunner, exampleOrgZone, flags, section, soaSerial, status, type DigRunner } from './fixture';
import { AnswerCache, AnswerDeps } from '../../server/dns/answer-cache';

const S = 'o=internet';
const ORG = `dc=example,dc=org,${S}`;
const entry = (dc: string, parent: string, ...lines: string[]) => `dn: dc=${dc},${parent}\nobjectClass: dNSDomain2\ndc: ${dc}\n${lines.map((l) => l + '\n').join('')}`;

const DATA = exampleOrgZone({
  extra: [
    entry('host', ORG, 'aRecord: 192.0.2.7'),
    entry('keep', ORG, 'aRecord: 192.0.2.8'),
    entry('sub', ORG),
    entry('host', `dc=sub,${ORG}`, 'aRecord: 192.0.2.9'),
    entry('sub2', ORG),
    entry('host', `dc=sub2,${ORG}`, 'aRecord: 192.0.2.10'),
    `dn: dc=test,${S}\nobjectClass: domain\ndc: test\n`,
    entry('plain', `dc=test,${S}`),
    entry('host', `dc=plain,dc=test,${S}`, 'aRecord: 192.0.2.11'),
    `dn: dc=net,${S}\nobjectClass: domain\ndc: net\n`,
    entry('example', `dc=net,${S}`, 'sOARecord: ns1.example.net. hostmaster.example.net. 1 3600 900 604800 60', 'nSRecord: ns1.example.org.',
      'aRecord: 198.51.100.1', 'dNSTTL: 300'),
  ],
});

/** Applies an LDIF change (changetype lines included) over LDAP; its reply has come when this resolves. */
async function ldapModify(t: TestAppliance, ldif: string): Promise<void> {
  const r = await run('ldapmodify', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
}

/** The answer section of `name type`, or the status when it is not NOERROR. */
async function answerOf(dig: DigRunner, name: string, type: string): Promise<string[] | string> {
  const r = await dig(name, type);
  const s = status(r.stdout);
  return s === 'NOERROR' ? section(r.stdout, 'ANSWER') : s;
}

describe('one serving thread: each write drops what it changes', () => {
  let t: TestAppliance;
  const dig = digRunner(() => t.app.ports.dns);
  const hits = () => t.app.dns.answerer.stats.cacheHits;

  before(async () => {
    // Unsigned zones: a zone born gets no key, so making an apex is no signing change (which reaches the whole zone).
    t = await startTestAppliance({ DCMX_THREADS: '1', DCMX_DNSSEC: 'off' });
    const r = await run('ldapadd', adminArgs(t), DATA);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => t?.close());

  /** Queries `name type` twice; the second must come from the cache. Returns the dig output. */
  async function cached(name: string, type: string): Promise<string> {
    await dig(name, type);
    const before = hits();
    const r = await dig(name, type);
    assert.equal(hits(), before + 1, `${name} ${type} is answered from the cache`);
    return r.stdout;
  }

  test('a cached NXDOMAIN, then the name added', async () => {
    assert.equal(status(await cached('new.example.org', 'A')), 'NXDOMAIN');
    await ldapModify(t, `dn: dc=new,${ORG}\nchangetype: add\nobjectClass: dNSDomain2\ndc: new\naRecord: 192.0.2.40\n`);
    assert.deepEqual(await answerOf(dig, 'new.example.org', 'A'), ['new.example.org. 300 IN A 192.0.2.40']);
  });

  test('a cached NXDOMAIN, then a wildcard added above it', async () => {
    assert.equal(status(await cached('any.thing.example.org', 'A')), 'NXDOMAIN');
    assert.equal(status(await cached('other.example.org', 'TXT')), 'NXDOMAIN');
    await ldapModify(t, `dn: dc=*,${ORG}\nchangetype: add\nobjectClass: dNSDomain2\ndc: *\ntXTRecord: "wild"\n`);
    // RFC 4592 §3.3.1: other.example.org has no node; the closest encloser's wildcard answers.
    assert.deepEqual(await answerOf(dig, 'other.example.org', 'TXT'), ['other.example.org. 300 IN TXT "wild"']);
    // any.thing.example.org: its closest encloser is the apex too (thing does not exist): NODATA for A now.
    const r = await dig('any.thing.example.org', 'A');
    assert.equal(status(r.stdout), 'NOERROR');
    assert.deepEqual(section(r.stdout, 'ANSWER'), []);
    await ldapModify(t, `dn: dc=*,${ORG}\nchangetype: delete\n`);
    assert.equal(status((await dig('other.example.org', 'TXT')).stdout), 'NXDOMAIN');
  });

  test('a cached answer, then its record changed', async () => {
    await cached('host.example.org', 'A');
    await ldapModify(t, `dn: dc=host,${ORG}\nchangetype: modify\nreplace: aRecord\naRecord: 192.0.2.77\n`);
    assert.deepEqual(await answerOf(dig, 'host.example.org', 'A'), ['host.example.org. 300 IN A 192.0.2.77']);
  });

  test('a cached MX answer, then the address of its target (the additional section) changed', async () => {
    const out = await cached('example.org', 'MX');
    assert.ok(section(out, 'ADDITIONAL').includes('mx.example.org. 300 IN A 192.0.2.25'), out);
    await ldapModify(t, `dn: dc=mx,${ORG}\nchangetype: modify\nreplace: aRecord\naRecord: 192.0.2.26\n`);
    const r = await dig('example.org', 'MX');
    assert.ok(section(r.stdout, 'ADDITIONAL').includes('mx.example.org. 300 IN A 192.0.2.26'), r.stdout);
    assert.ok(!section(r.stdout, 'ADDITIONAL').includes('mx.example.org. 300 IN A 192.0.2.25'), r.stdout);
  });

  test('a cached NODATA at the apex and the SOA, then a serial bump (a write elsewhere in the zone)', async () => {
    const nodata = await cached('example.org', 'AAAA');
    const soa = await cached('example.org', 'SOA');
    const serial = soaSerial(nodata);
    assert.equal(soaSerial(soa), serial);
    await ldapModify(t, `dn: dc=bump,${ORG}\nchangetype: add\nobjectClass: dNSDomain2\ndc: bump\n`);
    const after = await dig('example.org', 'AAAA');
    assert.equal(status(after.stdout), 'NOERROR');
    assert.ok(soaSerial(after.stdout) > serial, `NODATA carries the new serial:\n${after.stdout}`);
    assert.equal(soaSerial((await dig('example.org', 'SOA')).stdout), soaSerial(after.stdout));
  });

  test('a cached answer below a name that becomes a delegation', async () => {
    const out = await cached('host.sub.example.org', 'A');
    assert.ok(flags(out).includes('aa'));
    await ldapModify(t, `dn: dc=sub,${ORG}\nchangetype: modify\nadd: nSRecord\nnSRecord: ns.elsewhere.test.\n`);
    const r = await dig('host.sub.example.org', 'A');
    // RFC 1034 §4.3.2 step 3b: a referral, not authoritative, the cut's NS in authority.
    assert.equal(status(r.stdout), 'NOERROR');
    assert.ok(!flags(r.stdout).includes('aa'), r.stdout);
    assert.deepEqual(section(r.stdout, 'ANSWER'), []);
    assert.deepEqual(section(r.stdout, 'AUTHORITY'), ['sub.example.org. 300 IN NS ns.elsewhere.test.']);
  });

  test("the apex's dNSTTL changed: every record of the zone without its own TTL", async () => {
    const out = await cached('keep.example.org', 'A');
    assert.deepEqual(section(out, 'ANSWER'), ['keep.example.org. 300 IN A 192.0.2.8']);
    await ldapModify(t, `dn: ${ORG}\nchangetype: modify\nreplace: dNSTTL\ndNSTTL: 600\n`);
    assert.deepEqual(await answerOf(dig, 'keep.example.org', 'A'), ['keep.example.org. 600 IN A 192.0.2.8']);
    await ldapModify(t, `dn: ${ORG}\nchangetype: modify\nreplace: dNSTTL\ndNSTTL: 300\n`);
    assert.deepEqual(await answerOf(dig, 'keep.example.org', 'A'), ['keep.example.org. 300 IN A 192.0.2.8']);
  });

  test('a child zone carved out below cached answers', async () => {
    const pos = await cached('host.sub2.example.org', 'A');
    assert.deepEqual(section(pos, 'ANSWER'), ['host.sub2.example.org. 300 IN A 192.0.2.10']);
    const neg = await cached('nx.sub2.example.org', 'A');
    assert.match(section(neg, 'AUTHORITY')[0], /^example\.org\. \d+ IN SOA /);
    await ldapModify(t, [
      `dn: dc=sub2,${ORG}`, 'changetype: modify',
      'add: sOARecord', 'sOARecord: ns1.example.org. hostmaster.example.org. 7 3600 900 604800 30', '-',
      'add: nSRecord', 'nSRecord: ns1.example.org.', '-',
      'add: dNSTTL', 'dNSTTL: 120', '',
    ].join('\n'));
    assert.deepEqual(await answerOf(dig, 'host.sub2.example.org', 'A'), ['host.sub2.example.org. 120 IN A 192.0.2.10']);
    const r = await dig('nx.sub2.example.org', 'A');
    assert.equal(status(r.stdout), 'NXDOMAIN');
    assert.match(section(r.stdout, 'AUTHORITY')[0], /^sub2\.example\.org\. 30 IN SOA /, r.stdout);
  });

  test('a cached REFUSED (no zone), then a zone created with the dcmx CLI (another process)', async () => {
    assert.equal(status(await cached('www.cli-new.test', 'A')), 'REFUSED');
    const r = await runDcmx(testEnv(t.dataDir), ['domain', 'add', 'cli-new.test']);
    assert.equal(r.code, 0, r.stderr);
    await caughtUp(t);
    const after = await dig('www.cli-new.test', 'A');
    assert.equal(status(after.stdout), 'NXDOMAIN', after.stdout);
    assert.match(section(after.stdout, 'AUTHORITY')[0], /^cli-new\.test\. \d+ IN SOA /);
  });

  test('a cached REFUSED (no zone), then an entry above it made an apex', async () => {
    assert.equal(status(await cached('host.plain.test', 'A')), 'REFUSED');
    await ldapModify(t, `dn: dc=plain,dc=test,${S}\nchangetype: modify\nadd: sOARecord\nsOARecord: ns1.example.org. hostmaster.example.org. 1 3600 900 604800 60\n`);
    assert.deepEqual(await answerOf(dig, 'host.plain.test', 'A'), ['host.plain.test. 3600 IN A 192.0.2.11']);
  });

  test('targeted: a write keeps the answers it cannot change', async () => {
    const kept: [string, string][] = [['keep.example.org', 'A'], ['example.net', 'A'], ['mx.example.org', 'A'], ['www.example.org', 'A']];
    for (const [n, ty] of kept) await cached(n, ty);
    const dropped: [string, string][] = [['nothere.example.org', 'A'], ['example.org', 'SOA']];
    for (const [n, ty] of dropped) await cached(n, ty);
    // A new name in example.org: its node, the zone's SOA (serial bump) and the negative answers carrying it change.
    await ldapModify(t, `dn: dc=fresh,${ORG}\nchangetype: add\nobjectClass: dNSDomain2\ndc: fresh\naRecord: 192.0.2.50\n`);
    for (const [n, ty] of kept) {
      const before = hits();
      await dig(n, ty);
      assert.equal(hits(), before + 1, `${n} ${ty} still cached after a write to another name`);
    }
    for (const [n, ty] of dropped) {
      const before = hits();
      await dig(n, ty);
      assert.equal(hits(), before, `${n} ${ty} answered afresh: it carries the SOA`);
    }
    // A write to another zone entirely leaves example.org's negative answers alone.
    await cached('nothere.example.org', 'A');
    await ldapModify(t, `dn: dc=example,dc=net,${S}\nchangetype: modify\nreplace: aRecord\naRecord: 198.51.100.2\n`);
    const before = hits();
    assert.equal(status((await dig('nothere.example.org', 'A')).stdout), 'NXDOMAIN');
    assert.equal(hits(), before + 1, 'a write to example.net keeps example.org answers');
    assert.deepEqual(await answerOf(dig, 'example.net', 'A'), ['example.net. 300 IN A 198.51.100.2']);
  });
});

describe('two serving threads, signed zones, and a change made by another process', () => {
  let t: TestAppliance;
  const dig = digRunner(() => t.app.ports.dns);
  const work = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'dcmx-answer-cache-'));

  before(async () => {
    t = await startTestAppliance({ DCMX_THREADS: '2' });
    const r = await run('ldapadd', adminArgs(t), DATA);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await t?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('cached on both threads, written by `dcmx ldif import`, seen at once by every query', { timeout: 120_000 }, async () => {
    const names = ['cli.example.org', 'keep.example.org', 'other.example.org'];
    // Many queries from new source ports: the kernel spreads them over both threads' sockets.
    const ask = (n: string) => Promise.all(Array.from({ length: 12 }, () => answerOf(dig, n, 'A')));
    // Signed answers (DO, RFC 4035 §3.2.1) are cached too, under their own key.
    const askSigned = (n: string) => Promise.all(Array.from({ length: 12 }, async () => {
      const r = await dig('+dnssec', n, 'A');
      return { status: status(r.stdout), answer: section(r.stdout, 'ANSWER').filter((l) => !/ RRSIG /.test(l)), signed: section(r.stdout, 'ANSWER').some((l) => / RRSIG A /.test(l)) };
    }));
    for (const n of names) {
      await ask(n);
      await askSigned(n);
    }
    const stats = await t.app.stats();
    for (const th of stats.threads) assert.ok(th.dns.cacheHits > 0, `thread ${th.thread} answered from its cache: ${JSON.stringify(th.dns)}`);
    const ldif = path.join(work, 'add.ldif');
    fs.writeFileSync(ldif, [
      `dn: dc=cli,${ORG}\nobjectClass: dNSDomain2\ndc: cli\naRecord: 192.0.2.60\n`,
      `dn: dc=*,${ORG}\nobjectClass: dNSDomain2\ndc: *\naRecord: 192.0.2.61\n`,
    ].join('\n'));
    const r = await runDcmx(testEnv(t.dataDir), ['ldif', 'import', ldif]);
    assert.equal(r.code, 0, r.stderr);
    await caughtUp(t); // another process's commit: published within 100 ms, then every read follows it
    for (const a of await ask('cli.example.org')) assert.deepEqual(a, ['cli.example.org. 300 IN A 192.0.2.60']);
    for (const a of await ask('other.example.org')) assert.deepEqual(a, ['other.example.org. 300 IN A 192.0.2.61']);
    for (const a of await ask('keep.example.org')) assert.deepEqual(a, ['keep.example.org. 300 IN A 192.0.2.8']);
    for (const a of await askSigned('cli.example.org')) assert.deepEqual(a, { status: 'NOERROR', answer: ['cli.example.org. 300 IN A 192.0.2.60'], signed: true });
    for (const a of await askSigned('other.example.org')) assert.deepEqual(a, { status: 'NOERROR', answer: ['other.example.org. 300 IN A 192.0.2.61'], signed: true });
  });
});

describe('the cache index', () => {
  test('is bounded with the cache: an entry evicted, dropped or replaced leaves it', () => {
    const c = new AnswerCache(10);
    for (let i = 0; i < 1000; i++) {
      const d = new AnswerDeps();
      d.node(`n${i}.example.org`);
      d.zone('example.org');
      // Twice: once the cache is full, a key is admitted at its second miss.
      c.set(`k${i}`, Buffer.from([i & 0xff]), d);
      c.set(`k${i}`, Buffer.from([i & 0xff]), d);
    }
    assert.equal(c.size, 10);
    assert.equal(c.stats.notAdmitted, 990);
    assert.equal(c.indexSize, 11, 'ten node keys and the zone');
    c.invalidate({ names: new Set(['n995.example.org']), soa: new Set(), zoneWide: new Set(), renamed: new Set(), all: false });
    assert.equal(c.size, 9);
    assert.equal(c.get('k995'), undefined);
    assert.deepEqual(Buffer.from(c.get('k996') ?? '', 'latin1'), Buffer.from([996 & 0xff]));
    c.invalidate({ names: new Set(['example.org']), soa: new Set(['example.org']), zoneWide: new Set(), renamed: new Set(), all: false });
    assert.equal(c.size, 9, 'a serial bump keeps answers that read no SOA');
    c.invalidate({ names: new Set(['www.example.org']), soa: new Set(), zoneWide: new Set(['www.example.org']), renamed: new Set(), all: false });
    assert.equal(c.size, 0, 'a change that reaches the zone drops it all');
    assert.equal(c.indexSize, 0);
  });
});

/** A change to `names` only (no SOA, nothing zone-wide). */
const changed = (...names: string[]) => ({ names: new Set(names), soa: new Set<string>(), zoneWide: new Set<string>(), renamed: new Set<string>(), all: false });

/** Deps reading the nodes `nodes` of zone example.org. */
function depsOf(...nodes: string[]): AnswerDeps {
  const d = new AnswerDeps();
  for (const n of nodes) d.node(n);
  d.zone('example.org');
  return d;
}

/** The answer kept under `key`, as text. */
const text = (c: AnswerCache, key: string) => {
  const o = c.get(key);
  return o === undefined ? undefined : Buffer.from(o, 'latin1').toString();
};

describe('the cache layout: slots, lists and links reused', () => {
  test('a slot freed by an eviction serves the next answer, indexed under its own dependencies only', () => {
    const c = new AnswerCache(3);
    for (const k of ['a', 'b', 'c']) c.set(k, Buffer.from(`answer ${k}`), depsOf(`${k}.example.org`));
    assert.equal(text(c, 'a'), 'answer a'); // b is now the least recently used
    c.set('d', Buffer.from('answer d'), depsOf('d.example.org')); // full: a first miss is not kept
    assert.equal(c.stats.notAdmitted, 1);
    c.set('d', Buffer.from('answer d'), depsOf('d.example.org')); // kept, b evicted
    assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => text(c, k)), ['answer a', undefined, 'answer c', 'answer d']);
    assert.equal(c.indexSize, 4, 'three nodes and the zone: b left the index');
    c.invalidate(changed('b.example.org'));
    assert.equal(c.stats.invalidated, 0, "b's dependency went with it, and did not pass to d");
    c.invalidate(changed('d.example.org'));
    assert.equal(c.stats.invalidated, 1);
    assert.deepEqual(['a', 'c', 'd'].map((k) => text(c, k)), ['answer a', 'answer c', undefined]);
    // Round after round of evictions through the same three slots.
    for (let i = 0; i < 100; i++) {
      c.set(`r${i}`, Buffer.from(`round ${i}`), depsOf(`r${i}.example.org`, 'shared.example.org'));
      c.set(`r${i}`, Buffer.from(`round ${i}`), depsOf(`r${i}.example.org`, 'shared.example.org'));
    }
    assert.equal(c.size, 3);
    assert.deepEqual(['r97', 'r98', 'r99'].map((k) => text(c, k)), ['round 97', 'round 98', 'round 99']);
    assert.equal(c.indexSize, 5, 'three nodes, the shared one and the zone');
    c.invalidate(changed('shared.example.org'));
    assert.equal(c.size, 0);
    assert.equal(c.indexSize, 0);
  });

  test('an answer in many lists (twice in some) leaves all of them at once, counted once', () => {
    const c = new AnswerCache(10);
    const many = depsOf(...Array.from({ length: 20 }, (_, i) => `n${i}.example.org`));
    // No zone for x.y.z nor y.z: the unzoned walk indexes y.z and z twice.
    many.noZone('x.y.z');
    many.noZone('y.z');
    many.soa('example.org');
    c.set('many', Buffer.from('many'), many);
    c.set('other', Buffer.from('other'), depsOf('n3.example.org'));
    assert.equal(c.indexSize, 20 + 1 + 3 + 1, 'the nodes, the zone, x.y.z y.z z, the SOA');
    c.invalidate(changed('n17.example.org'));
    assert.equal(c.stats.invalidated, 1);
    assert.equal(text(c, 'many'), undefined);
    assert.equal(text(c, 'other'), 'other');
    assert.equal(c.indexSize, 2, "other's node and the zone");
    for (const name of ['z', 'y.z', 'x.y.z']) {
      c.set('many', Buffer.from('many again'), many);
      const was: number = c.stats.invalidated;
      // An apex made at `name`: an SOA set there, a change that reaches its zone.
      c.invalidate({ names: new Set([name]), soa: new Set([name]), zoneWide: new Set([name]), renamed: new Set(), all: false });
      assert.equal(c.stats.invalidated, was + 1, `an apex at ${name}`);
      assert.equal(text(c, 'many'), undefined);
    }
    assert.equal(text(c, 'other'), 'other');
  });

  test('a key set again is indexed under its new dependencies, not its old ones', () => {
    const c = new AnswerCache(4);
    c.set('k', Buffer.from('old'), depsOf('old.example.org'));
    c.set('k', Buffer.from('new'), depsOf('new.example.org'));
    assert.equal(c.size, 1);
    assert.equal(c.indexSize, 2);
    c.invalidate(changed('old.example.org'));
    assert.equal(text(c, 'k'), 'new');
    c.invalidate(changed('new.example.org'));
    assert.equal(text(c, 'k'), undefined);
    assert.equal(c.indexSize, 0);
  });

  test('invalidated while full: the room made is filled without admission or eviction', () => {
    const c = new AnswerCache(4);
    for (const k of ['a', 'b', 'c', 'd']) c.set(k, Buffer.from(k), depsOf(`${k}.example.org`, k < 'c' ? 'ab.example.org' : 'cd.example.org'));
    c.invalidate(changed('ab.example.org'));
    assert.equal(c.size, 2);
    assert.equal(c.stats.invalidated, 2);
    c.set('e', Buffer.from('e'), depsOf('e.example.org'));
    c.set('f', Buffer.from('f'), depsOf('f.example.org'));
    assert.equal(c.stats.notAdmitted, 0);
    assert.deepEqual(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => text(c, k)), [undefined, undefined, 'c', 'd', 'e', 'f']);
    c.set('g', Buffer.from('g'), depsOf('g.example.org'));
    assert.equal(c.stats.notAdmitted, 1, 'full again');
    // Every answer of the zone dropped at once, from a list that empties as it goes.
    c.invalidate({ names: new Set(['example.org']), soa: new Set(), zoneWide: new Set(['example.org']), renamed: new Set(), all: false });
    assert.equal(c.size, 0);
    assert.equal(c.indexSize, 0);
    assert.equal(c.stats.invalidated, 6);
  });

  test('clear (a rename) drops everything, and the cache fills again', () => {
    const c = new AnswerCache(5);
    for (let i = 0; i < 5; i++) c.set(`k${i}`, Buffer.from(`v${i}`), depsOf(`n${i}.example.org`));
    c.invalidate({ names: new Set(['a.example.org']), soa: new Set(), zoneWide: new Set(), renamed: new Set(['a.example.org']), all: false });
    assert.equal(c.stats.flushes, 1);
    assert.equal(c.size, 0);
    assert.equal(c.indexSize, 0);
    assert.equal(text(c, 'k0'), undefined);
    for (let i = 0; i < 5; i++) c.set(`j${i}`, Buffer.from(`w${i}`), depsOf(`n${i}.example.org`));
    assert.equal(c.stats.notAdmitted, 0);
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => text(c, `j${i}`)), ['w0', 'w1', 'w2', 'w3', 'w4']);
    c.invalidate(changed('n2.example.org'));
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => text(c, `j${i}`)), ['w0', 'w1', undefined, 'w3', 'w4']);
    c.clear();
    assert.equal(c.indexSize, 0);
  });

  test('an answer with an end is not served after it', () => {
    const c = new AnswerCache(2);
    c.set('fresh', Buffer.from('fresh'), depsOf(), Date.now() + 60_000);
    c.set('stale', Buffer.from('stale'), depsOf(), Date.now() - 1);
    assert.equal(text(c, 'fresh'), 'fresh');
    assert.equal(text(c, 'stale'), undefined);
  });

  test('many random operations: every answer served is the last one set under its key, every change drops its readers', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const c = new AnswerCache(50);
    const last = new Map<string, string>();
    const reads = (i: number) => [`n${i % 37}.example.org`, `m${i % 11}.example.org`, `o${i % 5}.example.org`];
    for (let op = 0; op < 20_000; op++) {
      const i = rand(200);
      const key = `k${i}`;
      const r = rand(10);
      if (r < 6) {
        const v = `${key} #${op}`;
        c.set(key, Buffer.from(v), depsOf(...reads(i)));
        if (c.get(key) !== undefined) last.set(key, v);
      } else if (r < 9) {
        const got = text(c, key);
        if (got !== undefined) assert.equal(got, last.get(key));
      } else {
        const name = reads(rand(200))[rand(3)];
        c.invalidate(changed(name));
        for (let k = 0; k < 200; k++) if (reads(k).includes(name)) assert.equal(c.get(`k${k}`), undefined, `k${k} read ${name}`);
      }
      assert.ok(c.size <= 50);
    }
    c.invalidate({ names: new Set(['example.org']), soa: new Set(), zoneWide: new Set(['example.org']), renamed: new Set(), all: false });
    assert.equal(c.size, 0);
    assert.equal(c.indexSize, 0);
  });
});

describe('admission once the cache is full', () => {
  let t: TestAppliance;
  const dig = digRunner(() => t.app.ports.dns);
  const a = () => t.app.dns.answerer;

  before(async () => {
    t = await startTestAppliance({ DCMX_THREADS: '1', DCMX_DNSSEC: 'off', DCMX_DNS_CACHE_ENTRIES: '3' });
    const r = await run('ldapadd', adminArgs(t), DATA);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => t?.close());

  test('a name asked once does not evict the answers asked again; asked twice, it is kept', async () => {
    for (const n of ['host', 'keep', 'www']) await dig(`${n}.example.org`, 'A');
    assert.equal(a().cacheSize, 3);
    const hits = a().stats.cacheHits;
    const refused = a().cache!.stats.notAdmitted;
    // A flood of names asked once: answered right, not kept, the three answers stay.
    for (let i = 0; i < 20; i++) assert.equal(status((await dig(`flood${i}.example.org`, 'A')).stdout), 'NXDOMAIN');
    assert.equal(a().cache!.stats.notAdmitted, refused + 20);
    for (const n of ['host', 'keep', 'www']) await dig(`${n}.example.org`, 'A');
    assert.equal(a().stats.cacheHits, hits + 3, 'the answers asked again are still cached');
    // The second miss of a question admits it (evicting the least recently used); the third is a hit.
    await dig('flood0.example.org', 'A');
    assert.equal(a().cache!.stats.notAdmitted, refused + 20);
    const h = a().stats.cacheHits;
    assert.equal(status((await dig('flood0.example.org', 'A')).stdout), 'NXDOMAIN');
    assert.equal(a().stats.cacheHits, h + 1);
  });
});
