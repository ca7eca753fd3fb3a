/**
 * Writes as data (server/directory/writes.ts): every command survives a
 * structured clone (what postMessage does) and executes the same, and the
 * directory's errors come back from data as the same class, result and text.
 * The same over the wire (ldapmodify, ldapexop against a reader that forwards
 * its writes as data): test/directory/reader.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Provisioner } from '../../server/directory/provision';
import { errorFromData, errorToData, LocalWriter, type WriteCommand } from '../../server/directory/writes';
import {
  AlreadyExistsError, DirectoryError, InsufficientAccessError, InvalidCredentialsError, InvalidDomainError, NoSuchObjectError,
  NotAllowedOnNonLeafError, ReaderWriteError, ReservedDomainError, SizeLimitError, StoreUnavailableError, TimeLimitError,
  TooManyFailuresError, UnwillingError,
} from '../../server/directory/errors';
import type { Directory } from '../../server/directory/directory';
import { attrs, cloningWriter, memoryDirectory, SUFFIX } from './fixture';

const OPTS = { hostname: 'mx.dcmx.test', catchall: true, spf: 'v=spf1 mx -all', dmarc: 'v=DMARC1; p=quarantine' };


/** The directory's user data: every entry's DN and user attributes, hashes and generated values left out. */
function contents(dir: Directory): [string, Record<string, string[]>][] {
  const base = dir.getByNdn(dir.suffixNdn)!;
  return [base, ...dir.store.descendants(base.rpath)].map((e) => [e.dn, Object.fromEntries(Object.entries(e.attrs)
    .filter(([k]) => !dir.schema.attr(k)!.operational && k !== 'userPassword' && k !== 'sOARecord'))]);
}

test('every command executes the same after a structured clone', async () => {
  const run = async (clone: boolean) => {
    const { dir, admin, zones } = await memoryDirectory();
    const local = new LocalWriter(dir, new Provisioner(dir, zones, OPTS));
    const w = clone ? cloningWriter(local) : local;
    const user = { dn: `uid=u1,ou=people,dc=example,dc=org,${SUFFIX}`, ndn: `uid=u1,ou=people,dc=example,dc=org,${SUFFIX}`, anonymous: false, admin: false };
    const results: unknown[] = [];
    results.push(await w.execute({ kind: 'provisionDomain', name: 'example.org' }));
    results.push(await w.execute({
      kind: 'add', who: admin, dn: user.dn,
      attrs: attrs({ objectClass: ['inetOrgPerson'], uid: 'u1', cn: 'U One', sn: 'One', userPassword: 'first-pw' }),
    }));
    results.push(await w.execute({ kind: 'modify', who: admin, dn: user.dn, mods: [{ op: 'add', type: 'mail', values: ['u1@example.org'] }] }));
    results.push(await w.execute({ kind: 'setPassword', who: user, dn: user.dn, password: 'second-pw' }));
    const stored = dir.getByNdn(dir.normalize(user.dn))!.attrs.userPassword[0];
    const fresh = await dir.passwords.hashClear('second-pw');
    results.push(await w.execute({ kind: 'rehash', who: user, old: stored, fresh }));
    assert.deepEqual(dir.getByNdn(dir.normalize(user.dn))!.attrs.userPassword, [fresh], 'the rehash replaced the value');
    results.push(await w.execute({ kind: 'rehash', who: user, old: stored, fresh })); // the value changed meanwhile: nothing replaced
    results.push(await w.execute({ kind: 'modifyDN', who: admin, dn: user.dn, newRdn: 'uid=u2', deleteOldRdn: true }));
    results.push(await w.execute({
      kind: 'import', continueOnError: true, records: [
        { op: 'add', line: 1, dn: `cn=imported,${SUFFIX}`, attrs: attrs({ objectClass: 'organizationalRole', cn: 'imported' }) },
        { op: 'add', line: 5, dn: `cn=orphan,cn=nowhere,${SUFFIX}`, attrs: attrs({ objectClass: 'organizationalRole', cn: 'orphan' }) },
        { op: 'modify', line: 9, dn: `cn=imported,${SUFFIX}`, mods: [{ op: 'add', type: 'description', values: ['from LDIF'] }] },
        { op: 'modifyDN', line: 13, dn: `cn=imported,${SUFFIX}`, newRdn: 'cn=renamed', deleteOldRdn: true },
      ],
    }));
    results.push(await w.execute({ kind: 'delete', who: admin, dn: `cn=renamed,${SUFFIX}` }));
    results.push(await w.execute({ kind: 'removeDomain', name: 'example.org' }));
    return { results, contents: contents(dir), last: dir.changeRange().last };
  };
  const direct = await run(false);
  const cloned = await run(true);
  assert.deepEqual(cloned, direct);
  // The import's one failure came back as data, and rebuilds as the directory's error.
  const imp = direct.results[7] as { applied: number; failures: { index: number; error: Parameters<typeof errorFromData>[0] }[] };
  assert.equal(imp.applied, 3);
  assert.equal(imp.failures.length, 1);
  assert.equal(imp.failures[0].index, 1);
  const err = errorFromData(imp.failures[0].error);
  assert.ok(err instanceof DirectoryError && err.result === 'noSuchObject', String(err));
  assert.equal((direct.results[5] as { changeNumber: number | null }).changeNumber, null);
});

test('a failing command rejects with the same error after a structured clone', async () => {
  const { dir, admin, zones } = await memoryDirectory();
  const local = new LocalWriter(dir, new Provisioner(dir, zones, OPTS));
  const cloned = cloningWriter(local);
  const cases: WriteCommand[] = [
    { kind: 'delete', who: admin, dn: `cn=nobody,cn=nowhere,${SUFFIX}` },
    { kind: 'add', who: admin, dn: `cn=admin,${SUFFIX}`, attrs: attrs({ objectClass: 'organizationalRole', cn: 'admin' }) },
    { kind: 'provisionDomain', name: 'co.uk' },
    { kind: 'provisionDomain', name: 'not a domain' },
    { kind: 'add', who: admin, dn: 'cn=x,,o=internet', attrs: attrs({ objectClass: 'organizationalRole', cn: 'x' }) },
    { kind: 'delete', who: { dn: '', ndn: '', anonymous: true, admin: false }, dn: `cn=admin,${SUFFIX}` },
  ];
  for (const cmd of cases) {
    const direct = await local.execute(cmd).then(() => assert.fail(`${cmd.kind} should fail`), (e: unknown) => e as Error);
    const back = await cloned.execute(cmd).then(() => assert.fail(`${cmd.kind} should fail`), (e: unknown) => e as Error);
    assert.equal(Object.getPrototypeOf(back), Object.getPrototypeOf(direct), `${direct.name}: same class`);
    assert.equal(back.message, direct.message);
    assert.deepEqual({ ...back }, { ...direct }, 'same fields (result, matchedDN, reason...)');
  }
});

test('each error class of the directory, and any other error, round-trips as data', () => {
  const errors: Error[] = [
    new DirectoryError('objectClassViolation', 'no structural class', 'o=internet'),
    new NoSuchObjectError('cn=x,o=internet', 'o=internet'),
    new AlreadyExistsError('cn=x,o=internet'),
    new InsufficientAccessError('a user may change its own password only'),
    new InvalidCredentialsError(),
    new NotAllowedOnNonLeafError('o=internet'),
    new UnwillingError('cannot rename the suffix entry'),
    new SizeLimitError(),
    new TimeLimitError(),
    new ReservedDomainError('co.uk', 'it is a public suffix'),
    new InvalidDomainError('a b', 'forbidden character'),
    new StoreUnavailableError('the store was removed'),
    new TooManyFailuresError(),
    new ReaderWriteError('add'),
  ];
  for (const e of errors) {
    const back = errorFromData(structuredClone(errorToData(e)));
    assert.equal(Object.getPrototypeOf(back), Object.getPrototypeOf(e), e.constructor.name);
    assert.equal(back.name, e.name);
    assert.equal(back.message, e.message);
    assert.deepEqual({ ...back }, { ...e });
  }
  const reserved = errorFromData(structuredClone(errorToData(new ReservedDomainError('co.uk', 'a suffix')))) as ReservedDomainError;
  assert.ok(reserved instanceof ReservedDomainError && reserved instanceof DirectoryError);
  assert.equal(reserved.reason, 'a suffix');
  assert.equal(reserved.domain, 'co.uk');
  const full = Object.assign(new Error('database or disk is full'), { name: 'SqliteError', code: 'SQLITE_FULL' });
  const other = errorFromData(structuredClone(errorToData(full)));
  assert.ok(!(other instanceof DirectoryError));
  assert.deepEqual([other.name, other.message, (other as Error & { code?: string }).code], ['SqliteError', 'database or disk is full', 'SQLITE_FULL']);
  assert.equal(errorFromData(errorToData('thrown text')).message, 'thrown text');
});
