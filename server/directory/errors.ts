/**
 * The directory's typed errors, declared in one place. Each carries the
 * LDAP result name it corresponds to (RFC 4511 Appendix A); endpoints convert
 * them to their wire codes in one place each (server/ldap/results.ts, the SMTP
 * and HTTP edges).
 */

/** LDAP result names the directory can produce. */
export type ResultName =
  | 'operationsError'
  | 'protocolError'
  | 'timeLimitExceeded'
  | 'sizeLimitExceeded'
  | 'authMethodNotSupported'
  | 'unavailableCriticalExtension'
  | 'noSuchAttribute'
  | 'undefinedAttributeType'
  | 'inappropriateMatching'
  | 'constraintViolation'
  | 'attributeOrValueExists'
  | 'invalidAttributeSyntax'
  | 'noSuchObject'
  | 'invalidDNSyntax'
  | 'invalidCredentials'
  | 'insufficientAccessRights'
  | 'unwillingToPerform'
  | 'namingViolation'
  | 'objectClassViolation'
  | 'notAllowedOnNonLeaf'
  | 'notAllowedOnRDN'
  | 'entryAlreadyExists'
  | 'objectClassModsProhibited'
  | 'affectsMultipleDSAs'
  | 'unavailable'
  | 'other';

/** Base class of every error the directory throws on purpose. */
export class DirectoryError extends Error {
  constructor(readonly result: ResultName, message: string, readonly matchedDN = '') {
    super(message);
    this.name = 'DirectoryError';
  }
}

export class NoSuchObjectError extends DirectoryError {
  constructor(dn: string, matchedDN = '') {
    super('noSuchObject', `no such entry: ${dn}`, matchedDN);
  }
}

export class AlreadyExistsError extends DirectoryError {
  constructor(dn: string) {
    super('entryAlreadyExists', `entry already exists: ${dn}`);
  }
}

export class InsufficientAccessError extends DirectoryError {
  constructor(message = 'insufficient access') {
    super('insufficientAccessRights', message);
  }
}

export class InvalidCredentialsError extends DirectoryError {
  constructor() {
    super('invalidCredentials', 'invalid credentials');
  }
}

export class NotAllowedOnNonLeafError extends DirectoryError {
  constructor(dn: string) {
    super('notAllowedOnNonLeaf', `entry has subordinates: ${dn}`);
  }
}

export class UnwillingError extends DirectoryError {
  constructor(message: string) {
    super('unwillingToPerform', message);
  }
}

export class SizeLimitError extends DirectoryError {
  constructor() {
    super('sizeLimitExceeded', 'size limit exceeded');
  }
}

export class TimeLimitError extends DirectoryError {
  constructor() {
    super('timeLimitExceeded', 'time limit exceeded');
  }
}

/**
 * A name that provisioning will not turn into a mail domain: a public suffix,
 * or a new zone that would cover this appliance's own host name or names
 * hosted here. `reason` says which, for the SMTP reply and the operator.
 */
export class ReservedDomainError extends DirectoryError {
  constructor(readonly domain: string, readonly reason: string) {
    super('unwillingToPerform', `${domain} is not provisioned: ${reason}`);
    this.name = 'ReservedDomainError';
  }
}

/** A name that cannot be a mail domain (provision.ts normalizeDomainName). */
export class InvalidDomainError extends DirectoryError {
  constructor(input: string, why: string) {
    super('unwillingToPerform', `invalid domain name '${input.length > 100 ? input.slice(0, 100) + '…' : input}': ${why}`);
    this.name = 'InvalidDomainError';
  }
}

/**
 * The store cannot take writes now (its file was removed or replaced under
 * the running appliance): a temporary refusal, RFC 4511 unavailable (52).
 */
export class StoreUnavailableError extends DirectoryError {
  constructor(message: string) {
    super('unavailable', message);
  }
}

/**
 * A remote transfer unit cannot reach its directory (DCMX_ROLE=mta: no
 * connection, a timeout): the answer is not known, so it is a temporary
 * refusal — SMTP 451 4.4.3 (RFC 3463 "directory server failure"), never a
 * 5xx; LDAP unavailable (52).
 */
export class DirectoryUnavailableError extends DirectoryError {
  constructor(message: string) {
    super('unavailable', message);
  }
}

/** A door refuses to check any password for an account or client that failed too often of late (auth-throttle.ts). */
export class TooManyFailuresError extends DirectoryError {
  constructor() {
    super('unwillingToPerform', 'too many failed authentication attempts; try again later');
  }
}

/**
 * A write method was called on a directory opened as a reader (a read-only
 * connection, open.ts): a bug of the caller, which must send the write to
 * the writer as a command (writes.ts). Nothing was written. LDAP `other` (80).
 */
export class ReaderWriteError extends DirectoryError {
  constructor(what: string) {
    super('other', `internal error: ${what} on a read-only directory reader; writes go to the writer as commands`);
    this.name = 'ReaderWriteError';
  }
}
