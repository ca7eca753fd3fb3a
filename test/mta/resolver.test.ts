/**
 * MailResolver against a loopback stub DNS server (never the machine's own
 * resolver): MX ordering and addresses, implicit MX, null MX, NXDOMAIN,
 * SERVFAIL and silence, names in our own zones answered without asking when
 * we hold them (and asked upstream when we do not), and this appliance
 * finding itself in an MX list (RFC 5321 §5.1).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RRTYPE, type RData, type RR } from '../../server/directory/records';
import type { Zone, ZoneNode } from '../../server/directory/zones';
import { MailResolveError, MailResolver, type SelfTest, type ZonesLike } from '../../server/mta/resolver';
import { StubDns } from './stub-dns';
import { within } from '../fixtures/wait';

const mx = (preference: number, exchange: string): RData => ({ type: RRTYPE.MX, preference, exchange });
const a = (address: string): RData => ({ type: RRTYPE.A, address });
const aaaa = (address: string): RData => ({ type: RRTYPE.AAAA, address });

async function rejectsWith(p: Promise<unknown>, kind: string, permanent: boolean): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof MailResolveError, `not a MailResolveError: ${String(err)}`);
    assert.equal(err.kind, kind);
    assert.equal(err.permanent, permanent);
    return true;
  });
}

/** A fake of our own authoritative view: zone `ours.test`, with a delegation at `sub.ours.test`. */
function fakeZones(): ZonesLike {
  const soa: Zone['soa'] = {
    name: 'ours.test', ttl: 3600,
    rdata: { type: 6, mname: 'ns.ours.test', rname: 'hostmaster.ours.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 300 },
  };
  const nodes = new Map<string, RR[]>();
  const put = (name: string, rdata: RData) => nodes.set(name, [...(nodes.get(name) ?? []), { name, ttl: 300, rdata }]);
  put('ours.test', soa.rdata);
  put('ours.test', mx(20, 'backup.elsewhere.test'));
  put('ours.test', mx(10, 'mail.ours.test'));
  put('mail.ours.test', a('192.0.2.1'));
  put('mail.ours.test', aaaa('2001:db8::1'));
  put('nomail.ours.test', { type: RRTYPE.TXT, strings: [Buffer.from('x')] });
  put('alias.ours.test', { type: RRTYPE.CNAME, target: 'mail.ours.test' });
  put('sub.ours.test', { type: RRTYPE.NS, target: 'ns.elsewhere.test' });
  put('*.wild.ours.test', mx(5, 'mail.ours.test'));
  put('wild.ours.test', a('192.0.2.9'));
  return {
    zoneOf(name: string) {
      return name === 'ours.test' || name.endsWith('.ours.test') ? { name: 'ours.test', soa } : undefined;
    },
    node(name: string): ZoneNode | undefined {
      const rrs = nodes.get(name);
      if (!rrs) return undefined;
      const rrsets = new Map<number, RR[]>();
      for (const rr of rrs) rrsets.set(rr.rdata.type, [...(rrsets.get(rr.rdata.type) ?? []), rr]);
      return { name, rrsets };
    },
  };
}

describe('MailResolver', () => {
  let dns: StubDns;
  let resolver: MailResolver;

  before(async () => {
    dns = await StubDns.start();
    dns
      .add('example.test', mx(20, 'mx2.example.test'))
      .add('example.test', mx(10, 'mx1a.example.test'))
      .add('example.test', mx(10, 'mx1b.example.test'))
      .add('mx1a.example.test', a('127.0.0.1'))
      .add('mx1a.example.test', aaaa('::1'))
      .add('mx1b.example.test', aaaa('::3'))
      .add('mx1b.example.test', a('127.0.0.3'))
      .add('mx2.example.test', a('127.0.0.2'))
      .add('implicit.test', a('127.0.0.5'))
      .add('nullmx.test', mx(0, ''))
      .add('dangling.test', mx(10, 'gone.dangling.test'))
      .add('slowmx.test', mx(10, 'slow.slowmx.test'))
      .add('halfgood.test', mx(10, 'slow.slowmx.test'))
      .add('halfgood.test', mx(20, 'mx2.example.test'))
      .add('1.0.0.127.in-addr.arpa', { type: RRTYPE.PTR, target: 'host.example.test' })
      .add('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa', { type: RRTYPE.PTR, target: 'v6.example.test' })
      .add('5.0.0.0.0.a.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa', { type: RRTYPE.PTR, target: 'v6b.example.test' })
      .add('sub.ours.test', mx(10, 'mx2.example.test'))
      // Names inside our zone ours.test that only the owner's DNS knows, or knows more of.
      .add('elsewhere.ours.test', mx(10, 'mail.elsewhere.ours.test'))
      .add('mail.elsewhere.ours.test', a('127.0.0.7'))
      .add('nomail.ours.test', mx(10, 'mx2.example.test'))
      .add('wild.ours.test', mx(10, 'mx2.example.test'))
      // This appliance (me.test, 127.0.0.9) in MX lists.
      .add('loopy.test', mx(10, 'me.test'))
      .add('backup.test', mx(20, 'ME.test.'))
      .add('backup.test', mx(10, 'mx2.example.test'))
      .add('backup.test', mx(30, 'mx1a.example.test'))
      .add('byaddr.test', mx(10, 'alias-of-me.test'))
      .add('byaddr.test', mx(10, 'mx2.example.test'))
      .add('byaddr.test', mx(20, 'mx1a.example.test'))
      .add('alias-of-me.test', a('127.0.0.9'))
      .add('selfimplicit.test', a('127.0.0.9'))
      .exists('noaddr.test');
    dns.servfail.add('broken.test');
    dns.silent.add('silent.test');
    dns.silent.add('slow.slowmx.test');
    resolver = new MailResolver({ upstream: [{ host: '127.0.0.1', port: dns.port }], zones: fakeZones(), timeoutMs: 300 });
  });
  after(() => dns?.close());

  test('MX targets sorted by preference, ties shuffled, IPv4 addresses first', async () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const t = await resolver.resolveMx('example.test');
      assert.deepEqual(t.map((x) => x.preference), [10, 10, 20]);
      assert.deepEqual(new Set(t.slice(0, 2).map((x) => x.host)), new Set(['mx1a.example.test', 'mx1b.example.test']));
      assert.equal(t[2].host, 'mx2.example.test');
      const byHost = Object.fromEntries(t.map((x) => [x.host, x.addresses]));
      assert.deepEqual(byHost['mx1a.example.test'], ['127.0.0.1', '::1']);
      assert.deepEqual(byHost['mx1b.example.test'], ['127.0.0.3', '::3']);
      assert.deepEqual(byHost['mx2.example.test'], ['127.0.0.2']);
      firsts.add(t[0].host);
    }
    assert.equal(firsts.size, 2, 'equal preferences come in both orders');
  });

  test('names are normalised (case, trailing dot)', async () => {
    const t = await resolver.resolveMx('Example.TEST.');
    assert.equal(t.length, 3);
  });

  test('lookupMx: explicit MX only, in a stable order', async () => {
    const t = await resolver.lookupMx('example.test');
    assert.deepEqual(t.map((x) => [x.host, x.preference]), [['mx1a.example.test', 10], ['mx1b.example.test', 10], ['mx2.example.test', 20]]);
    assert.deepEqual(await resolver.lookupMx('implicit.test'), []);
  });

  test('no MX: the domain itself is the implicit MX with preference 0', async () => {
    assert.deepEqual(await resolver.resolveMx('implicit.test'), [{ host: 'implicit.test', preference: 0, addresses: ['127.0.0.5'] }]);
  });

  test('no MX and no address: permanent', async () => {
    await rejectsWith(resolver.resolveMx('noaddr.test'), 'nxdomain', true);
  });

  test('null MX (RFC 7505): nullmx, permanent', async () => {
    await rejectsWith(resolver.resolveMx('nullmx.test'), 'nullmx', true);
    await rejectsWith(resolver.lookupMx('nullmx.test'), 'nullmx', true);
  });

  test('NXDOMAIN: nxdomain, permanent', async () => {
    await rejectsWith(resolver.resolveMx('nope.test'), 'nxdomain', true);
  });

  test('MX whose hosts do not exist: permanent', async () => {
    await rejectsWith(resolver.resolveMx('dangling.test'), 'nxdomain', true);
    const t = await resolver.lookupMx('dangling.test');
    assert.deepEqual(t, [{ host: 'gone.dangling.test', preference: 10, addresses: [], temporary: false }]);
  });

  test('lookupMx: a target whose address lookup times out is marked temporary, not just address-less', async () => {
    assert.deepEqual(await resolver.lookupMx('slowmx.test'), [{ host: 'slow.slowmx.test', preference: 10, addresses: [], temporary: true }]);
    const half = await resolver.lookupMx('halfgood.test');
    assert.deepEqual(half.map((x) => [x.host, x.addresses, x.temporary]), [['slow.slowmx.test', [], true], ['mx2.example.test', ['127.0.0.2'], false]]);
  });

  test('SERVFAIL: temporary', async () => {
    await rejectsWith(resolver.resolveMx('broken.test'), 'temporary', false);
  });

  test('no answer: temporary, once the resolver gives up (it does not wait forever)', async () => {
    await within('the resolver to give up on a silent server', rejectsWith(resolver.resolveMx('silent.test'), 'temporary', false), 60_000);
  });

  test('an MX host that does not answer: temporary when no other MX has an address', async () => {
    await rejectsWith(resolver.resolveMx('slowmx.test'), 'temporary', false);
    const t = await resolver.resolveMx('halfgood.test');
    assert.deepEqual(t, [{ host: 'mx2.example.test', preference: 20, addresses: ['127.0.0.2'] }]);
  });

  test('lookupHost: addresses of a relay host', async () => {
    assert.deepEqual(await resolver.lookupHost('mx1a.example.test'), ['127.0.0.1', '::1']);
    assert.deepEqual(await resolver.lookupHost('192.0.2.7'), ['192.0.2.7']);
    await rejectsWith(resolver.lookupHost('nope.test'), 'nxdomain', true);
  });

  test('names we hold in our own zones are answered from our view, never asked upstream', async () => {
    const before = dns.queries.length;
    const t = await resolver.resolveMx('ours.test');
    assert.equal(t[0].host, 'mail.ours.test');
    assert.deepEqual(t[0].addresses, ['192.0.2.1', '2001:db8::1']);
    // backup.elsewhere.test is outside our zones: asked upstream, NXDOMAIN there, so left out.
    assert.equal(t.length, 1);
    const upstreamNames = dns.queries.slice(before).map((q) => q.name);
    assert.ok(upstreamNames.every((n) => n === 'backup.elsewhere.test'), `asked upstream: ${upstreamNames.join(', ')}`);

    const mark = dns.queries.length;
    assert.deepEqual(await resolver.lookupHost('Alias.Ours.Test'), ['192.0.2.1', '2001:db8::1']);
    assert.deepEqual((await resolver.resolveMx('x.wild.ours.test')).map((x) => [x.host, x.preference]), [['mail.ours.test', 5]]);
    assert.equal(dns.queries.length, mark, 'the stub saw no query');
  });

  test('names our zone does not hold (missing, or without records of the type) are asked upstream', async () => {
    const mark = dns.queries.length;
    // Missing from ours.test: the owner's DNS has it, with an MX to a host of its own.
    assert.deepEqual(await resolver.resolveMx('elsewhere.ours.test'), [{ host: 'mail.elsewhere.ours.test', preference: 10, addresses: ['127.0.0.7'] }]);
    // Here with a TXT (nomail) or an A (wild) only: their MX comes from upstream.
    assert.deepEqual((await resolver.resolveMx('nomail.ours.test')).map((x) => x.host), ['mx2.example.test']);
    assert.deepEqual((await resolver.lookupMx('wild.ours.test')).map((x) => x.host), ['mx2.example.test']);
    // Nobody has it: NXDOMAIN, from upstream.
    await rejectsWith(resolver.resolveMx('missing.ours.test'), 'nxdomain', true);
    const asked = dns.queries.slice(mark).map((q) => `${q.name}/${q.type}`);
    for (const q of [`elsewhere.ours.test/${RRTYPE.MX}`, `mail.elsewhere.ours.test/${RRTYPE.A}`, `nomail.ours.test/${RRTYPE.MX}`, `wild.ours.test/${RRTYPE.MX}`, `missing.ours.test/${RRTYPE.MX}`]) {
      assert.ok(asked.includes(q), `${q} asked upstream: ${asked.join(', ')}`);
    }
  });

  const me: SelfTest = { isSelfName: (h) => h === 'me.test', isSelfAddress: (ip) => ip === '127.0.0.9' };

  test('RFC 5321 §5.1: this appliance as the best MX, by name or by address, is a loop (permanent)', async () => {
    await rejectsWith(resolver.resolveMx('loopy.test', me), 'loop', true);
    await assert.rejects(resolver.resolveMx('loopy.test', me), /mail for loopy\.test loops back to myself/);
    await rejectsWith(resolver.resolveMx('selfimplicit.test', me), 'loop', true);
    // byaddr.test: the best preference (10) holds us by address, so even its peer and the worse MX go.
    await rejectsWith(resolver.resolveMx('byaddr.test', me), 'loop', true);
    // Without `self` it is no loop: me.test just has no address upstream.
    await rejectsWith(resolver.resolveMx('loopy.test'), 'nxdomain', true);
  });

  test('RFC 5321 §5.1: as a backup MX, only the more preferred hosts are left', async () => {
    const t = await resolver.resolveMx('backup.test', me);
    assert.deepEqual(t.map((x) => [x.host, x.preference]), [['mx2.example.test', 10]]);
    assert.equal((await resolver.resolveMx('backup.test')).length, 2, 'without self: mx2 and mx1a (me.test has no address upstream)');
  });

  test('a delegation below our zone goes upstream', async () => {
    const mark = dns.queries.length;
    const t = await resolver.resolveMx('sub.ours.test');
    assert.deepEqual(t, [{ host: 'mx2.example.test', preference: 10, addresses: ['127.0.0.2'] }]);
    assert.ok(dns.queries.slice(mark).some((q) => q.name === 'sub.ours.test' && q.type === RRTYPE.MX));
  });

  test('reverse: callback style through the upstream', async () => {
    const names = await new Promise<string[] | undefined>((resolve, reject) =>
      resolver.reverse('127.0.0.1', (err, hostnames) => (err ? reject(err) : resolve(hostnames))),
    );
    assert.deepEqual(names, ['host.example.test']);
    const ptr = (ip: string) => new Promise<string[] | undefined>((resolve, reject) => resolver.reverse(ip, (err, h) => (err ? reject(err) : resolve(h))));
    assert.deepEqual(await ptr('2001:db8::1'), ['v6.example.test']);
    assert.deepEqual(await ptr('2001:DB8:0:0:0:0:fa0:5'), ['v6b.example.test']);
    await assert.rejects(ptr('not-an-ip'));
    const detached = resolver.reverse;
    const err = await new Promise<Error | null>((resolve) => detached('127.0.0.9', (e) => resolve(e)));
    assert.ok(err, 'no PTR is an error');
  });

  test('an upstream given by name is refused', () => {
    assert.throws(() => new MailResolver({ upstream: [{ host: 'dns.example', port: 53 }] }), /not an IP address/);
  });
});
