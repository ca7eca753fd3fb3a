/** ConnectionCaps (server/connection-caps.ts): the total, per-client shares (IPv6 per /64), exemptions, busy past 3/4; the settings of the caps. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { capsBuffer, ConnectionCaps } from '../server/connection-caps';
import { clientKey } from '../server/net';
import { cidrList } from '../server/net';
import { loadConfig } from '../server/config';
import { testEnv } from './helpers';

test('clientKey: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64 whatever its spelling', () => {
  assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('2001:db8:1:2::1'), clientKey('2001:0DB8:0001:0002:ffff:eeee:dddd:cccc'));
  assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));
  assert.equal(clientKey('::1'), clientKey('0:0:0:0:0:0:0:1'));
  assert.equal(clientKey('2001:db8::'), clientKey('2001:db8:0:0:1::'));
});

test('a client gets its share, the total is shared, releases give slots back; exempt clients count only in the total', () => {
  const caps = new ConnectionCaps({ max: 8, perClient: 2, exempt: cidrList(['10.0.0.0/8']) });
  assert.equal(caps.admit('192.0.2.1'), undefined);
  assert.equal(caps.admit('192.0.2.1'), undefined);
  assert.equal(caps.admit('192.0.2.1'), 'client');
  assert.equal(caps.admit('2001:db8::1'), undefined);
  assert.equal(caps.admit('2001:db8::2'), undefined);
  assert.equal(caps.admit('2001:db8::3'), 'client', 'the same /64');
  assert.equal(caps.busy, false);
  for (let i = 0; i < 3; i++) assert.equal(caps.admit('10.1.2.3'), undefined, 'exempt');
  assert.equal(caps.total, 7);
  assert.equal(caps.busy, true, '7 of 8 is past 3/4');
  assert.equal(caps.admit('10.1.2.3'), undefined);
  assert.equal(caps.admit('198.51.100.1'), 'total');
  caps.release('192.0.2.1');
  assert.equal(caps.of('192.0.2.1'), 1);
  assert.equal(caps.admit('192.0.2.1'), undefined);
});

test('shared by serving threads: the caps count every thread\'s connections; a replaced thread\'s are dropped; busy reaches every thread', async () => {
  const buffer = capsBuffer(2);
  let busyOnB = 0;
  let heard!: () => void;
  const woken = new Promise<void>((resolve) => (heard = resolve));
  // Thread B hears of a busy admission made by thread A through the shared memory.
  const b = new ConnectionCaps({ max: 8, perClient: 3, shared: { buffer, region: 1 }, onBusy: () => {
    busyOnB++;
    heard();
  } });
  const a = new ConnectionCaps({ max: 8, perClient: 3, shared: { buffer, region: 0 } });
  assert.equal(a.admit('192.0.2.1'), undefined);
  assert.equal(b.admit('192.0.2.1'), undefined);
  assert.equal(b.admit('192.0.2.1'), undefined);
  assert.equal(a.admit('192.0.2.1'), 'client', 'the client\'s 3 are spread over both threads');
  assert.equal(b.admit('192.0.2.1'), 'client');
  assert.deepEqual([a.total, b.total, a.here, b.here, a.of('192.0.2.1')], [3, 3, 1, 2, 3]);
  for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) assert.equal(a.admit(ip), undefined);
  assert.equal(busyOnB, 0);
  assert.equal(a.admit('198.51.100.4'), undefined, '7 of 8: busy');
  await woken;
  assert.equal(busyOnB, 1);
  assert.equal(b.admit('198.51.100.5'), undefined);
  assert.equal(b.admit('198.51.100.6'), 'total', '8 open in the process');
  a.release('192.0.2.1');
  assert.equal(b.admit('198.51.100.6'), undefined, 'a slot released on A serves B');
  // A replacement of thread A starts from a clean region: A's connections died with it.
  const a2 = new ConnectionCaps({ max: 8, perClient: 3, shared: { buffer, region: 0 } });
  assert.deepEqual([a2.total, a2.of('192.0.2.1')], [b.here, 2]);
});

test('the settings: defaults, and a bad value names its variable', () => {
  const c = loadConfig(testEnv('/tmp/unused'));
  assert.deepEqual([c.smtp.clientConnections, c.smtp.busyTimeout, c.ldap.clientConnections, c.ldap.busyIdleTimeout], [20, 10, 64, 10]);
  assert.deepEqual(c.http.hosts, []);
  for (const [name, value] of [
    ['DCMX_SMTP_CLIENT_CONNECTIONS', '0'], ['DCMX_SMTP_BUSY_TIMEOUT', 'soon'], ['DCMX_LDAP_CLIENT_CONNECTIONS', '-1'],
    ['DCMX_LDAP_BUSY_IDLE_TIMEOUT', '0'], ['DCMX_HTTP_HOSTS', 'admin.example,bad host!'],
  ]) {
    assert.throws(() => loadConfig(testEnv('/tmp/unused', { [name]: value })), new RegExp(`^ConfigError: ${name}: `), `${name}=${value}`);
  }
});
