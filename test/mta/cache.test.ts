/**
 * The transfer unit's directory cache over a MailSource, kept in step by
 * entry states (applyEntryChanges: what a remote unit's LDAP Content Sync
 * delivers, RFC 4533): the real store in memory, real entries written
 * through the directory, their states handed to the cache as a Content
 * Sync consumer would. The directory is written without telling the cache
 * first, so each test also shows the cache really answers from memory.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attrs, memoryDirectory, SUFFIX } from '../directory/fixture';
import { entryUuidOf } from '../../server/directory/entry';
import { MailDirectory, type MailDomain, type Recipient } from '../../server/directory/mail';
import { LocalMailSource, type EntryChange, type MailSource } from '../../server/directory/mail-source';
import type { Directory } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import { DirectoryCache } from '../../server/mta/cache';

const O = SUFFIX;
const EXAMPLE = `dc=example,dc=org,${O}`;
const PEOPLE = `ou=people,${EXAMPLE}`;
const ALICE = `uid=alice,${PEOPLE}`;

interface World {
  dir: Directory;
  admin: Identity;
  source: LocalMailSource;
  cache: DirectoryCache;
}

/** example.org (alias example.net) with alice, over the real store, and a cache of it. */
async function world(): Promise<World> {
  const { dir, admin, zones } = await memoryDirectory();
  await dir.add(admin, `dc=org,${O}`, attrs({ objectClass: 'domain', dc: 'org' }));
  await dir.add(admin, EXAMPLE, attrs({ objectClass: ['dNSDomain2', 'mailDomain', 'domainRelatedObject'], dc: 'example', associatedDomain: ['example.org', 'example.net'] }));
  await dir.add(admin, PEOPLE, attrs({ objectClass: 'organizationalUnit', ou: 'people' }));
  await dir.add(admin, ALICE, attrs({
    objectClass: ['inetOrgPerson', 'inetMailUser'], uid: 'alice', cn: 'Alice', sn: 'A', mail: 'alice@example.org', mailHost: 'Store1.Example.Org.',
  }));
  const source = new LocalMailSource(new MailDirectory(dir, zones.names));
  return { dir, admin, source, cache: new DirectoryCache(source, { max: 100 }) };
}

/** The entry's state now, as a Content Sync consumer receives it (`kind` add or modify). */
function state(dir: Directory, dn: string, kind: 'add' | 'modify' = 'modify'): EntryChange {
  const e = dir.getByNdn(dir.normalize(dn));
  assert.ok(e, dn);
  return { kind, uuid: entryUuidOf(e.attrs)!, dn: e.dn, ndn: e.ndn, attrs: e.attrs };
}

function uuidOf(dir: Directory, dn: string): string {
  return state(dir, dn).uuid;
}

async function domainOf(w: World, name = 'example.org'): Promise<MailDomain> {
  const d = await w.cache.domain(name);
  assert.ok(d, name);
  return d;
}

test('a hit is answered from memory; domains and recipients carry their entryUUID, a recipient its mailHost', async () => {
  const w = await world();
  const d = await domainOf(w);
  assert.equal(d.uuid, uuidOf(w.dir, EXAMPLE));
  assert.deepEqual(d.aliases, ['example.net']);
  const r = await w.cache.recipient(d, 'Alice@Example.org');
  assert.equal(r?.uuid, uuidOf(w.dir, ALICE));
  assert.equal(r?.mailHost, 'store1.example.org', 'lower case, no trailing dot');
  const reads = w.cache.stats.directoryReads;
  assert.equal((await w.cache.recipient(d, 'alice@example.org'))?.dn, ALICE);
  assert.equal((await domainOf(w)).name, 'example.org');
  assert.equal(w.cache.stats.directoryReads, reads, 'hits read nothing');
});

test('a modified entry: its old address is forgotten, its new one found, its mailHost change seen', async () => {
  const w = await world();
  const d = await domainOf(w);
  assert.ok(await w.cache.recipient(d, 'alice@example.org'));
  assert.equal(await w.cache.recipient(d, 'ally@example.org'), undefined, 'cached as negative');
  await w.dir.modify(w.admin, ALICE, [
    { op: 'replace', type: 'mail', values: ['ally@example.org'] },
    { op: 'replace', type: 'mailHost', values: ['store2.example.org'] },
  ]);
  assert.ok(await w.cache.recipient(d, 'alice@example.org'), 'not told yet: the cached answer stands');
  w.cache.applyEntryChanges([state(w.dir, ALICE)]);
  assert.equal(await w.cache.recipient(d, 'alice@example.org'), undefined);
  const r = await w.cache.recipient(d, 'ally@example.org');
  assert.equal(r?.mailHost, 'store2.example.org');
});

test('a delete sent as the entryUUID alone forgets the entry', async () => {
  const w = await world();
  const d = await domainOf(w);
  assert.ok(await w.cache.recipient(d, 'alice@example.org'));
  const uuid = uuidOf(w.dir, ALICE);
  w.dir.delete(w.admin, ALICE);
  w.cache.applyEntryChanges([{ kind: 'delete', uuid }]);
  assert.equal(await w.cache.recipient(d, 'alice@example.org'), undefined);
});

test('negative answers go when an added entry brings the address or the domain name', async () => {
  const w = await world();
  const d = await domainOf(w);
  assert.equal(await w.cache.recipient(d, 'bob@example.org'), undefined);
  assert.equal(await w.cache.domain('shop.example.org'), undefined);
  assert.equal(await w.cache.domain('example.com'), undefined);
  await w.dir.add(w.admin, `uid=bob,${PEOPLE}`, attrs({ objectClass: ['inetOrgPerson', 'inetMailUser'], uid: 'bob', cn: 'Bob', sn: 'B', mail: 'bob@example.org' }));
  await w.dir.add(w.admin, `dc=shop,${EXAMPLE}`, attrs({ objectClass: ['dNSDomain2', 'mailDomain'], dc: 'shop' }));
  await w.dir.add(w.admin, `dc=com,${O}`, attrs({ objectClass: 'domain', dc: 'com' }));
  await w.dir.add(w.admin, `dc=example,dc=com,${O}`, attrs({ objectClass: ['dNSDomain2', 'mailDomain'], dc: 'example' }));
  assert.equal(await w.cache.recipient(d, 'bob@example.org'), undefined, 'not told yet');
  w.cache.applyEntryChanges([`uid=bob,${PEOPLE}`, `dc=shop,${EXAMPLE}`, `dc=com,${O}`, `dc=example,dc=com,${O}`].map((dn) => state(w.dir, dn, 'add')));
  assert.equal((await w.cache.recipient(d, 'bob@example.org'))?.dn, `uid=bob,${PEOPLE}`);
  assert.equal((await w.cache.domain('shop.example.org'))?.name, 'shop.example.org');
  assert.equal((await w.cache.domain('example.com'))?.name, 'example.com');
});

test('an alias added to a domain entry: the negative answer for the alias name goes', async () => {
  const w = await world();
  await domainOf(w);
  assert.equal(await w.cache.domain('example.info'), undefined);
  await w.dir.modify(w.admin, EXAMPLE, [{ op: 'add', type: 'associatedDomain', values: ['example.info'] }]);
  const before = w.cache.stats.invalidations;
  w.cache.applyEntryChanges([state(w.dir, EXAMPLE)]);
  assert.ok(w.cache.stats.invalidations >= before + 2, 'example.org and example.info dropped');
  assert.deepEqual((await domainOf(w)).aliases, ['example.net', 'example.info']);
});

test('present changes nothing', async () => {
  const w = await world();
  const d = await domainOf(w);
  await w.cache.recipient(d, 'alice@example.org');
  const { hits, directoryReads } = w.cache.stats;
  w.cache.applyEntryChanges([{ kind: 'present', uuid: uuidOf(w.dir, ALICE) }, { kind: 'present', uuid: uuidOf(w.dir, EXAMPLE) }]);
  assert.ok(await w.cache.recipient(d, 'alice@example.org'));
  assert.equal(w.cache.stats.directoryReads, directoryReads);
  assert.equal(w.cache.stats.hits, hits + 1);
});

test('a renamed domain entry takes what was cached below it along, though only its own state arrives', async () => {
  const w = await world();
  const sales = `dc=sales,${EXAMPLE}`;
  await w.dir.add(w.admin, sales, attrs({ objectClass: ['dNSDomain2', 'mailDomain'], dc: 'sales' }));
  await w.dir.add(w.admin, `uid=carol,${sales}`, attrs({ objectClass: ['inetOrgPerson', 'inetMailUser'], uid: 'carol', cn: 'C', sn: 'C', mail: 'carol@sales.example.org' }));
  await w.dir.add(w.admin, `dc=eu,${sales}`, attrs({ objectClass: ['dNSDomain2', 'mailDomain'], dc: 'eu' }));
  const salesDomain = await domainOf(w, 'sales.example.org');
  assert.ok(await w.cache.recipient(salesDomain, 'carol@sales.example.org'));
  assert.ok(await w.cache.domain('eu.sales.example.org'));
  assert.equal(await w.cache.domain('eu.west.example.org'), undefined, 'cached as negative');
  w.dir.modifyDN(w.admin, sales, 'dc=west', true);
  // RFC 4533 sends the renamed entry's new state; the entries below it moved with it, unannounced.
  w.cache.applyEntryChanges([state(w.dir, `dc=west,${EXAMPLE}`)]);
  assert.equal(await w.cache.domain('sales.example.org'), undefined);
  assert.equal(await w.cache.domain('eu.sales.example.org'), undefined, 'a domain below the old name');
  assert.equal((await w.cache.domain('eu.west.example.org'))?.dn, `dc=eu,dc=west,${EXAMPLE}`, 'the negative answer below the new name went');
  const west = await domainOf(w, 'west.example.org');
  assert.equal((await w.cache.recipient(west, 'carol@sales.example.org'))?.dn, `uid=carol,dc=west,${EXAMPLE}`, 'the recipient below was re-read');
});

test('flush forgets everything', async () => {
  const w = await world();
  const d = await domainOf(w);
  await w.cache.recipient(d, 'alice@example.org');
  assert.equal(w.cache.size, 2);
  w.cache.flush();
  assert.equal(w.cache.size, 0);
  assert.equal(w.cache.stats.flushes, 1);
});

/**
 * The real local source whose answers are held back until released: what
 * a source across the network does while a change arrives. The answer is
 * read from the store when asked (its state then), given when released.
 */
class HeldSource implements MailSource {
  readonly directoryHost = undefined;
  readonly names;
  reads = 0;
  private held: (() => void)[] = [];

  constructor(private readonly inner: LocalMailSource) {
    this.names = inner.names;
  }

  private hold<T>(answer: Promise<T>): Promise<T> {
    this.reads++;
    return new Promise((resolve, reject) => this.held.push(() => answer.then(resolve, reject)));
  }

  release(): void {
    for (const r of this.held.splice(0)) r();
  }

  domain(name: string): Promise<MailDomain | undefined> {
    return this.hold(this.inner.domain(name));
  }

  domains(): Promise<MailDomain[]> {
    return this.hold(this.inner.domains());
  }

  recipient(domain: MailDomain, address: string): Promise<Recipient | undefined> {
    return this.hold(this.inner.recipient(domain, address));
  }

  authenticate(username: string, password: string, client?: string) {
    return this.inner.authenticate(username, password, client);
  }
}

test('concurrent misses share one read; a read overtaken by a change is answered but not kept', async () => {
  const w = await world();
  const d = await domainOf(w);
  const held = new HeldSource(w.source);
  const cache = new DirectoryCache(held, { max: 100 });
  const a = cache.recipient(d, 'alice@example.org');
  const b = cache.recipient(d, 'ALICE@example.org');
  assert.equal(held.reads, 1, 'one read for both');
  // While the answer is on its way, the entry is deleted and the delete arrives (UUID only).
  const uuid = uuidOf(w.dir, ALICE);
  w.dir.delete(w.admin, ALICE);
  cache.applyEntryChanges([{ kind: 'delete', uuid }]);
  held.release();
  assert.equal((await a)?.dn, ALICE, 'the answer read before the delete');
  assert.equal((await b)?.dn, ALICE);
  const again = cache.recipient(d, 'alice@example.org');
  assert.equal(held.reads, 2, 'not kept: read again');
  held.release();
  assert.equal(await again, undefined);
  assert.equal(cache.size, 1, 'the fresh (negative) answer is kept');
});

test('a read under way when an unrelated entry changes is kept', async () => {
  const w = await world();
  const d = await domainOf(w);
  const held = new HeldSource(w.source);
  const cache = new DirectoryCache(held, { max: 100 });
  const a = cache.recipient(d, 'alice@example.org');
  await w.dir.add(w.admin, `uid=dave,${PEOPLE}`, attrs({ objectClass: ['inetOrgPerson', 'inetMailUser'], uid: 'dave', cn: 'D', sn: 'D', mail: 'dave@example.org' }));
  cache.applyEntryChanges([state(w.dir, `uid=dave,${PEOPLE}`, 'add')]);
  held.release();
  assert.equal((await a)?.dn, ALICE);
  assert.ok(await cache.recipient(d, 'alice@example.org'));
  assert.equal(held.reads, 1, 'kept');
});

test('a failed read is not cached: the next lookup asks again', async () => {
  const w = await world();
  const d = await domainOf(w);
  let fail = true;
  const flaky: MailSource = {
    names: w.source.names,
    directoryHost: undefined,
    domain: (n) => w.source.domain(n),
    domains: () => w.source.domains(),
    recipient: (dom, a) => (fail ? Promise.reject(new Error('directory unreachable')) : w.source.recipient(dom, a)),
    authenticate: (u, p, c) => w.source.authenticate(u, p, c),
  };
  const cache = new DirectoryCache(flaky, { max: 100 });
  await assert.rejects(cache.recipient(d, 'alice@example.org'), /unreachable/);
  fail = false;
  assert.equal((await cache.recipient(d, 'alice@example.org'))?.dn, ALICE);
  assert.equal(cache.stats.directoryReads, 2);
});
