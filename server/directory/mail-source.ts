/**
 * What the transfer unit reads from the directory (issue 11): the contract
 * the local store and an LDAP client of a remote directory both implement.
 *
 * - `LocalMailSource` (here): the appliance's own store, through
 *   MailDirectory. Every answer is ready at once (a resolved promise).
 * - A remote transfer unit's source (server/directory-client/) reads over
 *   LDAP: every method may wait on the network, and may reject when the
 *   directory cannot be reached.
 *
 * The transfer unit's views keep their own copies in step with the
 * directory: the DirectoryCache (server/mta/cache.ts) and the RoutingTable
 * (routing.ts). On the appliance they follow the change log (ChangeRecord
 * rows); a remote unit follows LDAP Content Sync (RFC 4533), whose entry
 * states reach them as EntryChange values (cache.applyEntryChanges,
 * routing.setDomain / removeDomain / build).
 */
import type { Identity } from './access';
import type { MailDirectory, MailDomain, Recipient } from './mail';
import { signingKeys, type DkimSigningKey } from './dkim';

/** DC-tree names <-> DNs below the suffix (RFC 2247): a pure function of the suffix (zones.ts DnsNames is one). */
export interface DomainNames {
  /** The domain name an entry's DN spells (lower case), when it is a pure dc chain below the suffix. */
  fromDn(dn: string, ndn: string): string | undefined;
  /** The normalised DN of the entry spelling `name`. */
  toNdn(name: string): string | undefined;
}

/** What the transfer unit reads from the directory. Every method may wait on the network. */
export interface MailSource {
  readonly names: DomainNames;
  /**
   * The host of the appliance that holds the directory, which holds every
   * mailbox without `mailHost` (server/mta/placement.ts); undefined when
   * that appliance is this very process.
   */
  readonly directoryHost: string | undefined;
  /** The hosted mail domain `name` (exact name, lower case, not via aliases), or undefined. */
  domain(name: string): Promise<MailDomain | undefined>;
  /** Every hosted mail domain (the routing table's full build). */
  domains(): Promise<MailDomain[]>;
  /** The recipient below `domain` answering to `address` (normalised), or undefined. */
  recipient(domain: MailDomain, address: string): Promise<Recipient | undefined>;
  /**
   * SMTP AUTH (RFC 4954): the identity for `username` (its `mail` or `uid`)
   * and `password`, or undefined when either is wrong (one answer for both);
   * rejects with TooManyFailuresError while `client` is throttled.
   */
  authenticate(username: string, password: string, client?: string): Promise<Identity | undefined>;
  /**
   * The DKIM keys to sign mail from hosted domain `name` with (server/directory/dkim.ts
   * signingKeys; none when it is not hosted or has no published key). Only a
   * source that reads the store has it: the private keys are the
   * administrator's, which a remote unit is not.
   */
  dkimKeys?(name: string): DkimSigningKey[];
  /**
   * May the SMTP AUTH identity `dn` send as hosted domain `name`, its DKIM
   * key signing its mail (MailDirectory.maySendAs)? Given with dkimKeys.
   */
  maySendAs?(dn: string, name: string): boolean;
}

/**
 * One entry's new state, as LDAP Content Sync reports it (RFC 4533 §3.2,
 * the Sync State control): `add`/`modify` carry the entry (`dn`, `attrs` by
 * canonical attribute name, entryUUID among them or not); `delete` may come
 * as the UUID alone (a syncIdSet, §2.5); `present` says the entry did not
 * change. `previousDn`, when the consumer knows it, is the DN the entry had
 * before a rename (modrdn), so what was cached below it is forgotten too.
 */
export interface EntryChange {
  kind: 'add' | 'modify' | 'delete' | 'present';
  /** entryUUID (RFC 4530). */
  uuid: string;
  /** The entry's DN and normalised DN (the source's normal form, DomainNames.toNdn's): both or neither. */
  dn?: string;
  ndn?: string;
  /** The DN and normalised DN before a rename: both or neither. */
  previousDn?: string;
  previousNdn?: string;
  attrs?: Record<string, string[]>;
}

/** The appliance's MailSource: its own store, read synchronously through MailDirectory, each answer a resolved promise. */
export class LocalMailSource implements MailSource {
  readonly directoryHost = undefined;

  constructor(readonly mail: MailDirectory) {}

  get names(): DomainNames {
    return this.mail.names;
  }

  dkimKeys(name: string): DkimSigningKey[] {
    const ndn = this.mail.names.toNdn(name);
    return ndn === undefined ? [] : signingKeys(this.mail.directory, name, ndn);
  }

  maySendAs(dn: string, name: string): boolean {
    return this.mail.maySendAs(dn, name);
  }

  // async: a store error becomes a rejection, as a remote source's would.
  async domain(name: string): Promise<MailDomain | undefined> {
    return this.mail.domain(name);
  }

  async domains(): Promise<MailDomain[]> {
    return [...this.mail.domains()];
  }

  async recipient(domain: MailDomain, address: string): Promise<Recipient | undefined> {
    return this.mail.recipient(domain, address);
  }

  authenticate(username: string, password: string, client?: string): Promise<Identity | undefined> {
    return this.mail.authenticate(username, password, client);
  }
}
