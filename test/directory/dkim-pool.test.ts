/**
 * The DKIM key pool (server/directory/dkim.ts DkimKeyPool): keys made ahead
 * of time on libuv's thread pool are handed out at once and replaced; an
 * empty pool still gives a key, made then. Every key is a real key of its
 * algorithm whose published record derives from it.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { DkimKeyPool, dkimKeyRecord, dkimSelector } from '../../server/directory/dkim';

test('a filled pool hands out distinct keys of each algorithm with the day\'s selector, and fills up again', async () => {
  const pool = new DkimKeyPool(['rsa', 'ed25519'], 2);
  try {
    await pool.fill();
    assert.equal(pool.ready('rsa'), 2);
    assert.equal(pool.ready('ed25519'), 2);
    const day = new Date('2026-12-07T10:00:00Z');
    const a = pool.take('rsa', day);
    const b = pool.take('rsa', day);
    assert.equal(a.selector, dkimSelector('rsa', day));
    assert.equal(a.selector, 'd20261207-rsa');
    assert.notEqual(a.privateKey, b.privateKey, 'each key once');
    assert.equal(createPublicKey(a.privateKey).asymmetricKeyDetails?.modulusLength, 2048);
    assert.match(dkimKeyRecord(a.privateKey), /^v=DKIM1; k=rsa; p=/);
    const e = pool.take('ed25519', day);
    assert.equal(createPublicKey(e.privateKey).asymmetricKeyType, 'ed25519');
    assert.equal(e.selector, 'd20261207-ed25519');
    await pool.fill();
    assert.equal(pool.ready('rsa'), 2, 'taken keys are replaced');
    assert.equal(pool.ready('ed25519'), 2);
  } finally {
    pool.close();
  }
});

test('an empty pool makes the key at once; a closed pool makes no more', async () => {
  const pool = new DkimKeyPool(['ed25519'], 1);
  pool.close();
  const k = pool.take('ed25519');
  assert.equal(createPublicKey(k.privateKey).asymmetricKeyType, 'ed25519');
  await pool.fill();
  assert.equal(pool.ready('ed25519'), 0);
  assert.equal(pool.ready('rsa'), 0, 'an algorithm it does not pool');
});

test('a fill of a full pool leaves it able to fill again after a take', async () => {
  const pool = new DkimKeyPool(['ed25519'], 1);
  try {
    await pool.fill();
    await pool.fill(); // nothing to make
    pool.take('ed25519');
    await pool.fill();
    assert.equal(pool.ready('ed25519'), 1);
  } finally {
    pool.close();
  }
});
