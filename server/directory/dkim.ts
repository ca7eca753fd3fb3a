/**
 * DKIM signing keys of hosted domains (RFC 6376, RFC 8463), as they live in
 * the directory: one entry per selector, `dc=<selector>,dc=_domainkey,<domain>`,
 * a dNSDomain2 whose tXTRecord is the key record (RFC 6376 §3.6.1) and whose
 * `dkimPrivateKey` (class dkimKey) is the private key in PKCS#8 PEM. The
 * access policy shows that attribute to the administrator only
 * (server/directory/access.ts). Provisioning writes these entries in the
 * domain's own transaction (server/directory/provision.ts).
 */
import { createPublicKey, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { StoredEntry } from '../../storage/store';
import type { Directory } from './directory';

/** Key algorithms a new domain may get: RSA 2048 (RFC 6376 §3.3.1) and Ed25519 (RFC 8463). */
export type DkimAlgorithm = 'rsa' | 'ed25519';

/** A key pair made for a selector. */
export interface DkimKey {
  algorithm: DkimAlgorithm;
  /** The selector's label, e.g. `d20261207-rsa`. */
  selector: string;
  /** PKCS#8 PEM. */
  privateKey: string;
}

/**
 * The dated selector of a key made on `day` (UTC): `d<YYYYMMDD>-<algorithm>`,
 * so that a rotation later gets a new name and the two algorithms never share one.
 */
export function dkimSelector(algorithm: DkimAlgorithm, day = new Date()): string {
  return `d${day.toISOString().slice(0, 10).replace(/-/g, '')}-${algorithm}`;
}

/** Makes a new key for `algorithm` (RSA 2048 bits, or Ed25519) with today's selector. */
export function generateDkimKey(algorithm: DkimAlgorithm, day = new Date()): DkimKey {
  const { privateKey } = algorithm === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ed25519');
  return { algorithm, selector: dkimSelector(algorithm, day), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/**
 * New keys made ahead of time, off the event loop: generating an RSA 2048
 * key takes a fifth of a second or more, and provisioning runs in the one
 * writer's transaction, where every other write would wait for it. The pool
 * keeps up to `size` keys per algorithm, made by node:crypto's asynchronous
 * generateKeyPair (libuv's thread pool); `take` hands one out at once and
 * starts making its replacement, and makes one synchronously only when the
 * pool is empty (the first domains after start, or a burst).
 */
export class DkimKeyPool {
  private readonly keys = new Map<DkimAlgorithm, string[]>();
  /** The filling under way for an algorithm: one key at a time until the pool is full. */
  private readonly filling = new Map<DkimAlgorithm, Promise<void>>();
  private closed = false;

  constructor(private readonly algorithms: readonly DkimAlgorithm[], private readonly size = 2) {
    for (const a of algorithms) this.keys.set(a, []);
  }

  /** Fills the pool; resolves when every algorithm has `size` keys (or the pool was closed, or making a key failed). */
  fill(): Promise<void> {
    return Promise.all(this.algorithms.map((a) => this.refill(a))).then(() => undefined);
  }

  /** Keys ready for `algorithm`. */
  ready(algorithm: DkimAlgorithm): number {
    return this.keys.get(algorithm)?.length ?? 0;
  }

  /** A new key for `algorithm` with the selector of `day`: a pooled one, or one made now when none is ready. */
  take(algorithm: DkimAlgorithm, day = new Date()): DkimKey {
    const pooled = this.keys.get(algorithm)?.shift();
    void this.refill(algorithm);
    return pooled === undefined ? generateDkimKey(algorithm, day) : { algorithm, selector: dkimSelector(algorithm, day), privateKey: pooled };
  }

  /** Stops making keys (one under way is dropped when it ends). */
  close(): void {
    this.closed = true;
  }

  private refill(algorithm: DkimAlgorithm): Promise<void> {
    const keys = this.keys.get(algorithm);
    if (!keys) return Promise.resolve();
    let run = this.filling.get(algorithm);
    if (!run) {
      // Begun on the next microtask, so that it is in `filling` before its end removes it.
      run = Promise.resolve().then(async () => {
        try {
          while (!this.closed && keys.length < this.size) {
            const key = await makeKey(algorithm);
            if (!this.closed) keys.push(key.export({ type: 'pkcs8', format: 'pem' }) as string);
          }
        } catch {
          // take() makes its key synchronously instead
        } finally {
          this.filling.delete(algorithm);
        }
      });
      this.filling.set(algorithm, run);
    }
    return run;
  }
}

/** A private key of `algorithm`, made on libuv's thread pool. */
function makeKey(algorithm: DkimAlgorithm): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject) => (err ? reject(err) : resolve(priv));
    if (algorithm === 'rsa') generateKeyPair('rsa', { modulusLength: 2048 }, done);
    else generateKeyPair('ed25519', undefined, done);
  });
}

/**
 * The key record published for a private key (RFC 6376 §3.6.1):
 * `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>` for RSA, and for
 * Ed25519 `k=ed25519` with the bare 32-byte public key (RFC 8463 §4.2).
 * Throws on a value that is no private key.
 */
export function dkimKeyRecord(privateKeyPem: string): string {
  const pub = createPublicKey(privateKeyPem);
  if (pub.asymmetricKeyType === 'ed25519') {
    const raw = Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url');
    return `v=DKIM1; k=ed25519; p=${raw.toString('base64')}`;
  }
  if (pub.asymmetricKeyType !== 'rsa') throw new Error(`not a DKIM key type: ${pub.asymmetricKeyType}`);
  return `v=DKIM1; k=rsa; p=${(pub.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64')}`;
}

/** Is this TXT value (master-file form) a DKIM key record? */
export function isDkimKeyRecord(v: string): boolean {
  return /^"?v=DKIM1\s*(;|"|$)/i.test(v.trim());
}

/**
 * Parses a DCMX_NEW_DOMAIN_DKIM value: a comma-separated list of `rsa` and
 * `ed25519`, or `off` (also empty) for none. Throws on anything else.
 */
export function parseDkimAlgorithms(value: string): DkimAlgorithm[] {
  const v = value.trim().toLowerCase();
  if (v === '' || v === 'off') return [];
  const out: DkimAlgorithm[] = [];
  for (const part of v.split(',').map((s) => s.trim())) {
    if (part !== 'rsa' && part !== 'ed25519') throw new Error(`'${part}' is not a DKIM key algorithm (rsa, ed25519, or off)`);
    if (!out.includes(part)) out.push(part);
  }
  return out;
}

/** The selector entry's attributes for `key` at `<selector>._domainkey.<domain>`. */
export function dkimSelectorEntry(domain: string, key: DkimKey): { type: string; values: string[] }[] {
  return [
    { type: 'objectClass', values: ['top', 'dNSDomain2', 'domainRelatedObject', 'dkimKey'] },
    { type: 'dc', values: [key.selector] },
    { type: 'associatedDomain', values: [`${key.selector}._domainkey.${domain}`] },
    { type: 'tXTRecord', values: [quoteTxt(dkimKeyRecord(key.privateKey))] },
    { type: 'dkimPrivateKey', values: [key.privateKey] },
  ];
}

/** The selector entries (class dkimKey) below `dc=_domainkey,<domain entry>`, by the domain entry's normalised DN. */
export function dkimKeyEntries(directory: Directory, domainNdn: string): StoredEntry[] {
  const base = directory.getByNdn(`dc=_domainkey,${domainNdn}`);
  if (!base) return [];
  const filter = { type: 'eq' as const, attr: directory.schema.objectClassType, norm: 'dkimkey' };
  return [...directory.store.candidates({ base, scope: 'one', filter })].filter((e) => e.ndn !== base.ndn);
}

/** A key to sign a domain's mail with. */
export interface DkimSigningKey {
  domain: string;
  selector: string;
  privateKey: string;
}

/**
 * The keys mail from `domain` (the domain entry's normalised DN `domainNdn`)
 * is signed with: per algorithm, the key of the latest dated selector whose
 * key record is published (a withdrawn one would not verify), RSA first. A
 * domain with both an RSA and an Ed25519 key gets both signatures (RFC 8463
 * §4: a signer may sign with both, for verifiers that know only RSA).
 */
export function signingKeys(directory: Directory, domain: string, domainNdn: string): DkimSigningKey[] {
  const best = new Map<DkimAlgorithm, DkimSigningKey>();
  for (const e of dkimKeyEntries(directory, domainNdn)) {
    const selector = e.attrs.dc?.[0];
    const algorithm = storedKeyAlgorithm(e);
    if (!selector || !algorithm || !(e.attrs.tXTRecord ?? []).some(isDkimKeyRecord)) continue;
    const had = best.get(algorithm);
    if (!had || selector > had.selector) best.set(algorithm, { domain, selector, privateKey: e.attrs.dkimPrivateKey![0] });
  }
  return (['rsa', 'ed25519'] as const).flatMap((a) => best.get(a) ?? []);
}

/** The algorithm of a stored selector entry's private key, if it holds a usable one. */
export function storedKeyAlgorithm(e: StoredEntry): DkimAlgorithm | undefined {
  const pem = e.attrs.dkimPrivateKey?.[0];
  if (!pem) return undefined;
  try {
    const t = createPublicKey(pem).asymmetricKeyType;
    return t === 'rsa' || t === 'ed25519' ? t : undefined;
  } catch {
    return undefined;
  }
}

/** A TXT value in master-file form, quoted (records.ts splits it into 255-byte strings). */
export function quoteTxt(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
