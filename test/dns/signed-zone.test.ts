/**
 * The parts of a signed zone that are pure functions: canonical name order
 * (RFC 4034 §6.1) and the classic NSEC chain (RFC 4035 §2.3) over a zone's
 * records, delegations and glue included.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { compareCanonical, nsecChain, nsecTtl, sortCanonical } from '../../server/dns/signed-zone';
import type { RR } from '../../server/directory/records';

/** A record with placeholder data of type `type` (the chain looks at owners and types only). */
const rr = (name: string, type: number, ttl = 300): RR => ({ name, ttl, rdata: { type, target: 'x' } as unknown as RR['rdata'] });
const SOA: RR = { name: 'example', ttl: 300, rdata: { type: 6, mname: 'ns1.example', rname: 'h.example', serial: 1, refresh: 3600, retry: 900, expire: 604800, minimum: 60 } };

describe('canonical name order (RFC 4034 §6.1)', () => {
  test('the example of §6.1 sorts as the RFC lists it', () => {
    const rfc = ['example', 'a.example', 'yljkjljk.a.example', 'Z.a.example', 'zABC.a.EXAMPLE', 'z.example', '\x01.z.example', '*.z.example', '\x80.z.example'];
    const shuffled = [rfc[5], rfc[8], rfc[0], rfc[3], rfc[7], rfc[1], rfc[6], rfc[4], rfc[2]];
    assert.deepEqual(sortCanonical(shuffled), rfc);
    for (let i = 1; i < rfc.length; i++) assert.ok(compareCanonical(rfc[i - 1], rfc[i]) < 0, `${rfc[i - 1]} < ${rfc[i]}`);
  });

  test('case folds for ASCII only; a parent sorts before its children; the root first', () => {
    assert.equal(compareCanonical('WWW.Example', 'www.example'), 0);
    assert.ok(compareCanonical('example', 'a.example') < 0);
    assert.ok(compareCanonical('', 'org') < 0);
    assert.ok(compareCanonical('_dmarc.example', 'a.example') < 0, "'_' (0x5f) is below 'a' (0x61), above 'Z' folded");
    assert.ok(compareCanonical('b.a.example', 'a-b.example') < 0, 'labels compare from the right: a < a-b');
    assert.ok(compareCanonical('\xc0.example', '\xe0.example') < 0, 'octets above 0x7f are not folded');
  });
});

describe('the NSEC chain (RFC 4035 §2.3)', () => {
  const zone = [
    SOA, rr('example', 2), rr('example', 15), rr('example', 48),
    rr('www.example', 1), rr('www.example', 28),
    rr('a.b.c.example', 16), // b.c.example and c.example are empty non-terminals: no NSEC
    rr('sub.example', 2), rr('sub.example', 43), rr('sub.example', 1), // delegation with DS and an address at the cut
    rr('ns.sub.example', 1), rr('deep.ns.sub.example', 28), // glue and occluded data below the cut
    rr('*.example', 16),
    rr('unsigned.example', 2, 86400), // delegation without DS
  ];

  test('one NSEC per authoritative name and delegation, in canonical order, wrapping to the apex', () => {
    const chain = nsecChain(zone, 'example');
    const line = (r: RR) => {
      const d = r.rdata as unknown as { next: string; types: number[] };
      return `${r.name} ${r.ttl} ${d.next} ${d.types.join(',')}`;
    };
    assert.deepEqual(chain.map(line), [
      'example 60 *.example 2,6,15,46,47,48',
      '*.example 60 a.b.c.example 16,46,47',
      'a.b.c.example 60 sub.example 16,46,47',
      'sub.example 60 unsigned.example 2,43,46,47', // no A: the address at the cut is glue
      'unsigned.example 60 www.example 2,46,47',
      'www.example 60 example 1,28,46,47',
    ]);
  });

  test('NSEC TTL is the lesser of SOA MINIMUM and the SOA TTL (RFC 9077 §3)', () => {
    assert.equal(nsecTtl(SOA), 60);
    assert.equal(nsecTtl({ ...SOA, ttl: 30 }), 30);
  });

  test('a zone without an apex SOA is refused', () => {
    assert.throws(() => nsecChain([rr('www.example', 1)], 'example'), /no SOA/);
  });

  test('a one-name zone has an NSEC pointing to itself', () => {
    const chain = nsecChain([SOA, rr('example', 2)], 'example');
    assert.equal(chain.length, 1);
    assert.equal((chain[0].rdata as unknown as { next: string }).next, 'example');
  });
});
