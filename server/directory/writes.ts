/**
 * Writes as data, one writer.
 *
 * Every write to the directory is a {@link WriteCommand}: plain,
 * structured-cloneable data (no closure, no class instance; an Identity is
 * the plain `{dn, ndn, anonymous, admin}`), so that a thread that receives
 * a write can hand it to the one writer with `postMessage` and answer its
 * client when the writer's promise resolves. The doors never call the
 * directory's write methods: each is given a {@link DirectoryWriter}
 * (LDAP context, MTA deps, the CLI) and executes commands through it.
 *
 * - {@link LocalWriter} executes commands on this thread's writable
 *   Directory and Provisioner: the one-thread shape, and what the main
 *   thread runs for the commands serving threads forward.
 * - A command's promise resolves after its transaction committed AND the
 *   change clock (change-clock.ts) was published, so whatever a client does
 *   after the reply, on whatever thread, sees the write (Directory.sync).
 * - Errors cross a thread as data: {@link errorToData} on the writer's side,
 *   {@link errorFromData} on the other rebuilds the same class (a
 *   DirectoryError subclass keeps its result name, message and matchedDN,
 *   and fields such as ReservedDomainError's `reason`), so the door answers
 *   with the same LDAP result code or SMTP reply as in one thread. Any other
 *   error comes back as a plain Error with its message (and `code`): the
 *   doors treat it as the internal error it is.
 * - {@link settle} / {@link unsettle} turn an execution into one message
 *   ({@link WriteOutcome}) and back.
 * - Other processes' commits (the `dcmx` command opens the store and writes
 *   through a LocalWriter of its own) are published on the writer's clock
 *   by {@link watchOtherWriters} within OTHER_WRITERS_MS.
 */
import type { Identity } from './access';
import type { Directory, Modification } from './directory';
import type { AttrInput } from './entry';
import {
  AlreadyExistsError, DirectoryError, InsufficientAccessError, InvalidCredentialsError, InvalidDomainError, NoSuchObjectError,
  NotAllowedOnNonLeafError, ReaderWriteError, ReservedDomainError, SizeLimitError, StoreUnavailableError, TimeLimitError,
  TooManyFailuresError, UnwillingError, type ResultName,
} from './errors';
import type { Provisioner, ProvisionResult } from './provision';

/**
 * One record of an LDIF import as data (server/admin/ldif-io.ts makes them
 * from parsed LDIF): values in stored form (entry.ts valueFromBytes), and
 * userPassword values already readied (Directory.hashPasswords). `line` is
 * the record's line in the file, for the report.
 */
export type ImportRecord =
  | { op: 'add'; line: number; dn: string; attrs: AttrInput[] }
  | { op: 'delete'; line: number; dn: string }
  | { op: 'modify'; line: number; dn: string; mods: Modification[] }
  | { op: 'modifyDN'; line: number; dn: string; newRdn: string; deleteOldRdn: boolean; newSuperior?: string };

/**
 * Every directory write, as data. `who` is the identity the write is made
 * as (access control and creatorsName/modifiersName are the writer's).
 * - `add`, `modify`, `delete`, `modifyDN`: the LDAP operations (RFC 4511
 *   §4.6–4.9); clear-text userPassword values are hashed by the writer.
 * - `setPassword`: Password Modify (RFC 3062): `password` is clear text,
 *   hashed by the writer whatever it looks like. The old password, when the
 *   client gave one, is checked by the door before (a bind: a read).
 * - `rehash`: after a successful bind or AUTH, the one stored value `old` of
 *   `who`'s entry is replaced by `fresh`, a hash in the configured scheme
 *   made by the door (DCMX_PASSWORD_REHASH). Skipped, not failed, when the
 *   value changed meanwhile.
 * - `provisionDomain`, `removeDomain`: Provisioner's operations (provision.ts),
 *   for every door (LDAP extended operation, SMTP at RCPT, the CLI). `force`
 *   is the operator's override of the reserved names.
 * - `import`: a batch of LDIF records, applied as the administrator with
 *   server-internal rights (operational attributes kept), in one
 *   transaction; when one fails, one by one, each in its own, so the others
 *   are written. Without `continueOnError` the batch stops at its first
 *   failure (the records before it are written).
 */
export type WriteCommand =
  | { kind: 'add'; who: Identity; dn: string; attrs: AttrInput[] }
  | { kind: 'modify'; who: Identity; dn: string; mods: Modification[] }
  | { kind: 'delete'; who: Identity; dn: string }
  | { kind: 'modifyDN'; who: Identity; dn: string; newRdn: string; deleteOldRdn: boolean; newSuperior?: string }
  | { kind: 'setPassword'; who: Identity; dn: string; password: string }
  | { kind: 'rehash'; who: Identity; old: string; fresh: string }
  | { kind: 'provisionDomain'; name: string; force?: boolean }
  | { kind: 'removeDomain'; name: string }
  | { kind: 'import'; records: ImportRecord[]; continueOnError: boolean };

/** A write that made a change-log row: its change number (serial bumps of zones follow it in the log). */
export interface ChangeResult {
  changeNumber: number;
}

/** What an import batch did: records written, and those that failed (index in the batch, and why). */
export interface ImportResult {
  applied: number;
  failures: { index: number; error: ErrorData }[];
}

/** The result of each command, by kind: plain data. */
export interface WriteResults {
  add: ChangeResult;
  modify: ChangeResult;
  delete: ChangeResult;
  modifyDN: ChangeResult;
  setPassword: ChangeResult;
  /** null: nothing replaced (the stored value changed since the bind, or `fresh` is not storable). */
  rehash: { changeNumber: number | null };
  provisionDomain: ProvisionResult;
  removeDomain: { name: string };
  import: ImportResult;
}

/** The result of command `C`. */
export type ResultOf<C extends WriteCommand> = WriteResults[C['kind']];

/** Any command's result. */
export type WriteResult = WriteResults[keyof WriteResults];

/**
 * The one write path as the doors see it. `execute` resolves with the
 * command's result once it is committed and published on the change clock,
 * or rejects with the error the directory threw (rebuilt by errorFromData
 * when it crossed a thread).
 */
export interface DirectoryWriter {
  execute<C extends WriteCommand>(cmd: C): Promise<ResultOf<C>>;
}

/**
 * Executes commands on this thread's writable directory (and provisioner,
 * for the provisioning commands): the one writer. Commands run as they
 * arrive; each write is one synchronous transaction, so two commands never
 * interleave inside one (hashing, which is asynchronous, happens before).
 */
export class LocalWriter implements DirectoryWriter {
  /**
   * Also makes this writer the one `directory`'s binds send their rehash
   * to, when none was set (Directory.useWriter).
   */
  constructor(readonly directory: Directory, readonly provisioner?: Provisioner) {
    directory.useWriter(this, { ifUnset: true });
  }

  async execute<C extends WriteCommand>(cmd: C): Promise<ResultOf<C>> {
    return (await this.run(cmd)) as ResultOf<C>;
  }

  private async run(cmd: WriteCommand): Promise<WriteResult> {
    const dir = this.directory;
    switch (cmd.kind) {
      case 'add':
        return { changeNumber: await dir.add(cmd.who, cmd.dn, cmd.attrs) };
      case 'modify':
        return { changeNumber: await dir.modify(cmd.who, cmd.dn, cmd.mods) };
      case 'delete':
        return { changeNumber: dir.delete(cmd.who, cmd.dn) };
      case 'modifyDN':
        return { changeNumber: dir.modifyDN(cmd.who, cmd.dn, cmd.newRdn, cmd.deleteOldRdn, cmd.newSuperior) };
      case 'setPassword':
        return { changeNumber: await dir.setPassword(cmd.who, cmd.dn, cmd.password) };
      case 'rehash':
        return { changeNumber: dir.replacePassword(cmd.who, cmd.old, cmd.fresh) ?? null };
      case 'provisionDomain':
        return this.provisioning().provisionDomain(cmd.name, { force: cmd.force });
      case 'removeDomain':
        this.provisioning().removeDomain(cmd.name);
        return { name: cmd.name };
      case 'import':
        return applyImport(dir, cmd.records, cmd.continueOnError);
    }
  }

  private provisioning(): Provisioner {
    if (!this.provisioner) throw new DirectoryError('unwillingToPerform', 'domain provisioning is not offered here');
    return this.provisioner;
  }
}

/** Applies one import record inside the caller's transaction (server-internal rights: operational attributes kept). */
function applyRecord(dir: Directory, who: Identity, r: ImportRecord): void {
  switch (r.op) {
    case 'add':
      dir.addSync(who, r.dn, r.attrs, { relax: true });
      return;
    case 'delete':
      dir.delete(who, r.dn);
      return;
    case 'modify':
      dir.modifySync(who, r.dn, r.mods, { relax: true });
      return;
    case 'modifyDN':
      dir.modifyDN(who, r.dn, r.newRdn, r.deleteOldRdn, r.newSuperior);
      return;
  }
}

/** The `import` command: the batch in one transaction, or record by record when one of them fails. */
function applyImport(dir: Directory, records: readonly ImportRecord[], continueOnError: boolean): ImportResult {
  const who = dir.systemIdentity();
  if (records.length === 0) return { applied: 0, failures: [] };
  try {
    dir.write(() => {
      for (const r of records) applyRecord(dir, who, r);
    });
    return { applied: records.length, failures: [] };
  } catch {
    // Some record of the batch failed: apply them one by one to find it.
  }
  const out: ImportResult = { applied: 0, failures: [] };
  for (let i = 0; i < records.length; i++) {
    try {
      dir.write(() => applyRecord(dir, who, records[i]));
      out.applied++;
    } catch (err) {
      out.failures.push({ index: i, error: errorToData(err) });
      if (!continueOnError) break;
    }
  }
  return out;
}

// ------------------------------------------------------------------ other processes

/** How often the writer looks for other processes' commits (watchOtherWriters). */
const OTHER_WRITERS_MS = 100;

/**
 * The writer's watch of commits made by other processes (the `dcmx` CLI):
 * every `everyMs`, SQLite's `PRAGMA data_version` of the writer's connection
 * (it changes when another connection commits, Store.dataVersion) is
 * compared with the last seen, and when it moved the last change number is
 * published on the clock (Directory.publishCommitted), so every thread's
 * views follow those writes too, at most `everyMs` later. One cheap query a
 * tick when nothing happened.
 */
export function watchOtherWriters(directory: Directory, everyMs = OTHER_WRITERS_MS): { stop(): void } {
  return { stop: directory.store.watchOtherCommits(everyMs, () => directory.publishCommitted()) };
}

// ------------------------------------------------------------------ errors as data

/** The directory's error classes, by name: what errorFromData rebuilds. */
const DIRECTORY_ERRORS = {
  DirectoryError, NoSuchObjectError, AlreadyExistsError, InsufficientAccessError, InvalidCredentialsError,
  NotAllowedOnNonLeafError, UnwillingError, SizeLimitError, TimeLimitError, ReservedDomainError, InvalidDomainError,
  StoreUnavailableError, TooManyFailuresError, ReaderWriteError,
} as const;

/** The name of a DirectoryError class that crosses threads as itself. */
export type DirectoryErrorClass = keyof typeof DIRECTORY_ERRORS;

/**
 * An error as data (structured-cloneable).
 * - `directory`: a DirectoryError (or subclass `class`): its result name,
 *   message, matchedDN, and its other own fields (`name`, ReservedDomainError's
 *   `domain` and `reason`, ...), scalar values only.
 * - `other`: anything else: its name, message, and `code` (a system or
 *   SQLite error code) when it has one.
 */
export type ErrorData =
  | {
    kind: 'directory'; class: DirectoryErrorClass; result: ResultName; message: string; matchedDN: string;
    fields: Record<string, string | number | boolean>;
  }
  | { kind: 'other'; name: string; message: string; code?: string };

/** `e` as data, for a postMessage (see ErrorData). */
export function errorToData(e: unknown): ErrorData {
  if (e instanceof DirectoryError) {
    const proto = Object.getPrototypeOf(e) as object;
    const cls = (Object.keys(DIRECTORY_ERRORS) as DirectoryErrorClass[]).find((k) => DIRECTORY_ERRORS[k].prototype === proto) ?? 'DirectoryError';
    const fields: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(e)) {
      if (k === 'result' || k === 'matchedDN') continue;
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields[k] = v;
    }
    return { kind: 'directory', class: cls, result: e.result, message: e.message, matchedDN: e.matchedDN, fields };
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { kind: 'other', name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { kind: 'other', name: 'Error', message: String(e) };
}

/**
 * The error `d` describes, rebuilt: the same DirectoryError class with the
 * same result, message, matchedDN and fields (so `instanceof` checks and
 * the LDAP result code are those of the original), or a plain Error with
 * the name, message and code of any other.
 */
export function errorFromData(d: ErrorData): Error {
  if (d.kind === 'directory') {
    const cls = DIRECTORY_ERRORS[d.class] ?? DirectoryError;
    // The base constructor with the class as new.target: the subclass's prototype, the data's own fields.
    const e = Reflect.construct(DirectoryError, [d.result, d.message, d.matchedDN], cls) as DirectoryError;
    Object.assign(e, d.fields);
    return e;
  }
  const e = new Error(d.message);
  e.name = d.name;
  if (d.code !== undefined) (e as Error & { code?: string }).code = d.code;
  return e;
}

/** An execution as one message: its result, or its error as data. */
export type WriteOutcome = { ok: true; result: WriteResult } | { ok: false; error: ErrorData };

/** Executes `cmd` on `writer` and resolves with the outcome as data (never rejects): what the writer's thread posts back. */
export async function settle(writer: DirectoryWriter, cmd: WriteCommand): Promise<WriteOutcome> {
  try {
    return { ok: true, result: await writer.execute(cmd) };
  } catch (e) {
    return { ok: false, error: errorToData(e) };
  }
}

/** The result of an outcome, or its error rebuilt and thrown: what the forwarding thread makes of the reply. */
export function unsettle<C extends WriteCommand>(outcome: WriteOutcome): ResultOf<C> {
  if (outcome.ok) return outcome.result as ResultOf<C>;
  throw errorFromData(outcome.error);
}
