/**
 * The benchmark DIT: `dc=<tld>,o=internet`, then `domains` mail domains
 * `dc=dN,dc=<tld>,o=internet` (dNSDomain2 + mailDomain, with an mXRecord),
 * `ou=people` under each, and one user `uid=uN` per domain (inetOrgPerson +
 * inetMailUser, mail uN@dN.<tld>, a pre-hashed {SSHA} userPassword so that
 * loading does not pay the server's PBKDF2).
 */
import * as crypto from 'node:crypto';
import type { AddEntry } from './wire';

export const SUFFIX = 'o=internet';
export const ADMIN_DN = 'cn=admin,o=internet';
export const ADMIN_PASSWORD = 'bench-admin-secret';
export const TLD = 'test';

/** `{SSHA}` of `clear` with a fresh 8-byte salt (RFC 2307 practice, as OpenLDAP writes it). */
export function ssha(clear: string): string {
  const salt = crypto.randomBytes(8);
  const digest = crypto.createHash('sha1').update(clear).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** The mail address of user `i`. */
export const mailOf = (i: number): string => `u${i}@d${i}.${TLD}`;

const tldDn = `dc=${TLD},${SUFFIX}`;
const domainDn = (i: number) => `dc=d${i},${tldDn}`;
const peopleDn = (i: number) => `ou=people,${domainDn(i)}`;

/** A load phase: `count` entries, all of whose parents exist once the previous phases are done. */
export interface Phase {
  name: string;
  count: number;
  entry(i: number): AddEntry;
}

/**
 * The phases that load the DIT, in order. `withSuffix` adds the suffix
 * entry first (slapd; dcmx creates it at bootstrap).
 */
export function ditPhases(domains: number, withSuffix: boolean): Phase[] {
  // One entry per phase at the top: the adds of a phase run concurrently, and the TLD's parent is the suffix.
  const top: AddEntry[] = [];
  if (withSuffix) top.push({ dn: SUFFIX, attrs: [['objectClass', ['top', 'organization']], ['o', ['internet']]] });
  top.push({ dn: tldDn, attrs: [['objectClass', ['top', 'domain', 'dNSDomain', 'dNSDomain2']], ['dc', [TLD]]] });
  return [
    ...top.map((e, i): Phase => ({ name: i === top.length - 1 ? 'top' : 'suffix', count: 1, entry: () => e })),
    {
      name: 'domains',
      count: domains,
      entry: (i) => ({
        dn: domainDn(i),
        attrs: [
          ['objectClass', ['top', 'domain', 'dNSDomain', 'dNSDomain2', 'mailDomain']],
          ['dc', [`d${i}`]],
          ['mXRecord', [`10 mx.d${i}.${TLD}.`]],
          ['mailDomainStatus', ['active']],
        ],
      }),
    },
    {
      name: 'ou=people',
      count: domains,
      entry: (i) => ({ dn: peopleDn(i), attrs: [['objectClass', ['top', 'organizationalUnit']], ['ou', ['people']]] }),
    },
    {
      name: 'users',
      count: domains,
      entry: (i) => ({
        dn: `uid=u${i},${peopleDn(i)}`,
        attrs: [
          ['objectClass', ['top', 'person', 'organizationalPerson', 'inetOrgPerson', 'mailRecipient', 'inetMailUser']],
          ['uid', [`u${i}`]],
          ['cn', [`User ${i}`]],
          ['sn', [`User${i}`]],
          ['givenName', ['Bench']],
          ['mail', [mailOf(i)]],
          ['userPassword', [ssha(`password-${i}`)]],
        ],
      }),
    },
  ];
}
