/**
 * Access control, one policy for every door:
 * - the administrator may do everything;
 * - anonymous may read the root DSE, the schema, the suffix entry and the
 *   DC tree's domain entries, never `userPassword`, `dkimPrivateKey` nor
 *   `dnssecPrivateKey`;
 * - an authenticated user may read the directory (not others' passwords, not
 *   the change log) and change its own password, but not remove it;
 * - a replication identity (DCMX_REPLICATOR_DNS) reads as a user does, and
 *   every userPassword and private key too: an OpenLDAP replica must hold what binds check
 *   (and the directory holds it to no size or time limit);
 * - a transfer unit identity (DCMX_UNIT_DNS) reads as a user does, never
 *   another's userPassword, is held to no size or time limit (a remote unit
 *   follows every address by Content Sync), and may call the provisioning
 *   extended operation; it writes nothing else;
 * - a domain manager, a user named by an `owner` value (RFC 4519 §2.21) of
 *   a mail domain's entry, reads as a user does and also manages the
 *   domain's mailboxes: adds, modifies and deletes entries below the
 *   domain's `ou=people`, and sets the domain's catch-all
 *   (mailDomainCatchallAddress); every address it writes (mail,
 *   mailAlternateAddress, mailEquivalentAddress, the catch-all) is in that
 *   domain. It renames nothing, and provisions, holds or removes no domain;
 * - a DKIM private key (`dkimPrivateKey`, server/directory/dkim.ts) and a
 *   zone's DNSSEC key (`dnssecPrivateKey`, dnssec-keys.ts) are read
 *   by the administrator and the replication identities (a replica is a full
 *   copy, as for userPassword) only: anonymous, users, domain managers and
 *   transfer unit identities never see it;
 * - anything else is insufficientAccessRights (50).
 */
import type { AttributeType, Schema } from '../../schema/registry';
import type { DirEntry } from './entry';

/** Who is asking. `ndn` is the normalised bind DN ('' for anonymous). */
export interface Identity {
  readonly dn: string;
  readonly ndn: string;
  readonly anonymous: boolean;
  readonly admin: boolean;
}

/**
 * The mail domain an entry is at or below, as the policy judges managers:
 * the nearest entry at or above it with the mailDomain class whose DN is a
 * dc chain below the suffix (Directory.domainAt).
 */
export interface DomainScope {
  /** The domain entry's normalised DN. */
  readonly ndn: string;
  /** The domain's name (lower case, no trailing dot). */
  readonly name: string;
  /** Normalised DNs of its `owner` values: the users who manage it. */
  readonly owners: readonly string[];
}

/** Attributes whose values are mail addresses: a manager writes only addresses of its own domain. */
const ADDRESS_ATTRIBUTES = ['mail', 'mailalternateaddress', 'mailequivalentaddress', 'maildomaincatchalladdress'];

/** The anonymous identity. */
export const ANONYMOUS: Identity = Object.freeze({ dn: '', ndn: '', anonymous: true, admin: false });

/** Decides reads and writes. Built once per directory. */
export class AccessPolicy {
  private readonly userPassword: AttributeType;
  private readonly hiddenPassword: ReadonlySet<AttributeType>;
  /** Hidden from all but the administrator. */
  private readonly hiddenSecrets: ReadonlySet<AttributeType>;
  private readonly domainClasses = new Set(['domain', 'dcobject']);
  private readonly replicators: ReadonlySet<string>;
  private readonly units: ReadonlySet<string>;

  constructor(
    private readonly schema: Schema,
    private readonly suffixNdn: string,
    private readonly changelogNdn: string,
    /** Normalised DNs of the replication identities. */
    replicatorNdns: readonly string[] = [],
    /** Normalised DNs of the transfer unit identities. */
    unitNdns: readonly string[] = [],
  ) {
    this.replicators = new Set(replicatorNdns);
    this.units = new Set(unitNdns);
    this.userPassword = schema.attr('userPassword')!;
    const secrets = [schema.attr('dkimPrivateKey')!, schema.attr('dnssecPrivateKey')!];
    this.hiddenPassword = new Set([this.userPassword, ...secrets]);
    this.hiddenSecrets = new Set(secrets);
  }

  /** May `who` see this entry at all? */
  canRead(who: Identity, e: DirEntry): boolean {
    if (who.admin) return true;
    if (e.id < 0) {
      // virtual entries: root DSE and subschema for all; the change log for the admin only
      return !(e.ndn === this.changelogNdn || e.ndn.endsWith(',' + this.changelogNdn));
    }
    if (!who.anonymous) return true;
    if (e.ndn === this.suffixNdn) return true;
    const classes = e.attrs.objectClass ?? [];
    return classes.some((c) => {
      const oc = this.schema.objectClass(c);
      if (!oc) return false;
      for (const a of oc.ancestors) if (this.domainClasses.has(a.lname)) return true;
      return false;
    });
  }

  /** Attributes of a readable entry that `who` may not see (nor test in filters). */
  hiddenAttributes(who: Identity, e: DirEntry): ReadonlySet<AttributeType> | undefined {
    if (who.admin) return undefined;
    if (this.isReplicator(who)) return undefined;
    if (!who.anonymous && who.ndn === e.ndn) return this.hiddenSecrets;
    return this.hiddenPassword;
  }

  /** Does `who` manage the mail domain `domain` (an `owner` of its entry)? */
  manages(who: Identity, domain: DomainScope | undefined): boolean {
    return !who.anonymous && domain !== undefined && domain.owners.includes(who.ndn);
  }

  /** Is `ndn` a mailbox entry of `domain`: below its `ou=people`? */
  private inPeople(ndn: string, domain: DomainScope): boolean {
    return ndn.endsWith(`,ou=people,${domain.ndn}`);
  }

  /**
   * May `who` add or delete entry `ndn` (in `domain`, the mail domain it is
   * at or below)? The administrator anywhere; a domain's manager below the
   * domain's `ou=people`. Without `ndn` (a rename), the administrator only.
   */
  canWriteTree(who: Identity, ndn?: string, domain?: DomainScope): boolean {
    if (who.admin) return true;
    return ndn !== undefined && domain !== undefined && this.manages(who, domain) && this.inPeople(ndn, domain);
  }

  /**
   * May `who` apply a modify with these attribute types to entry `ndn` (in
   * `domain`)? Users may change only their own userPassword; a domain's
   * manager any attribute of its mailboxes, and the domain's catch-all.
   */
  canModify(who: Identity, ndn: string, types: AttributeType[], domain?: DomainScope): boolean {
    if (who.admin) return true;
    if (who.anonymous) return false;
    if (domain && this.manages(who, domain)) {
      if (this.inPeople(ndn, domain)) return true;
      if (ndn === domain.ndn) return types.every((t) => t.lname === 'maildomaincatchalladdress');
    }
    if (who.ndn !== ndn) return false;
    return types.every((t) => t === this.userPassword);
  }

  /**
   * May `who` leave entry `ndn` (in `domain`) with these address values
   * (`values` by lower-case attribute name, the addresses of the entry
   * after the write)? Anyone but a domain's manager may (the write was
   * allowed on other grounds); a manager only with addresses of its domain.
   */
  addressesAllowed(who: Identity, domain: DomainScope | undefined, values: (lname: string) => readonly string[]): boolean {
    if (who.admin || !domain || !this.manages(who, domain)) return true;
    for (const a of ADDRESS_ATTRIBUTES) {
      for (const v of values(a)) {
        const at = v.lastIndexOf('@');
        if (at <= 0 || v.slice(at + 1).toLowerCase().replace(/\.$/, '') !== domain.name) return false;
      }
    }
    return true;
  }

  /** May `who` leave an entry that had a userPassword without one? Only the administrator. */
  mayRemovePassword(who: Identity): boolean {
    return who.admin;
  }

  /**
   * May `who` read every entry of the tree (the change log aside)? The
   * administrator and bound users may; anonymous may not (canRead).
   */
  readsAllEntries(who: Identity): boolean {
    return who.admin || !who.anonymous;
  }

  /** Is `who` bound as a replication identity (DCMX_REPLICATOR_DNS)? */
  isReplicator(who: Identity): boolean {
    return !who.anonymous && this.replicators.has(who.ndn);
  }

  /** Is `who` bound as a transfer unit identity (DCMX_UNIT_DNS)? */
  isUnit(who: Identity): boolean {
    return !who.anonymous && this.units.has(who.ndn);
  }

  /**
   * Is `who` held to no server size or time limit? The administrator, and
   * those that copy or follow the whole directory: replication and transfer
   * unit identities.
   */
  isUnlimited(who: Identity): boolean {
    return who.admin || this.isReplicator(who) || this.isUnit(who);
  }

  /** May `who` provision a mail domain (the provisioning extended operation)? The administrator and the transfer units. */
  mayProvision(who: Identity): boolean {
    return who.admin || this.isUnit(who);
  }

  /** May `who` compare this attribute? Passwords are compared by the admin only. */
  canCompare(who: Identity, e: DirEntry, at: AttributeType): boolean {
    if (!this.canRead(who, e)) return false;
    return !this.hiddenAttributes(who, e)?.has(at);
  }
}
