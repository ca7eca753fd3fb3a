/** ConnectionCaps (server/connection-caps.ts): the total, per-client shares (IPv6 per /64), exemptions, busy past 3/4; the settings of the caps. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ConnectionCaps } from '../server/connection-caps';
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
