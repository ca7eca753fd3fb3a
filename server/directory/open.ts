/**
 * Opens the directory over a store file: loads the schema, opens SQLite with
 * the configured indexes (rebuilding the index when the set changed).
 *
 * Two ways: the writer (one per process, first: migrations, reindex, the
 * change-log upgrade, then bootstrap, all its own), and readers (`readOnly`,
 * any number, any thread, each on a read-only connection of its own): the
 * same read API — get, search, compare, bind, the change feed, the zones —
 * following the writer's change clock (Directory.sync). A reader's write
 * methods throw ReaderWriteError; its writes go to the writer as commands
 * (writes.ts).
 */
import { Schema } from '../../schema/registry';
import { allModules } from '../../schema/definitions';
import { Store } from '../../storage/store';
import { StorageError } from '../../storage/db';
import { DEFAULT_INDEXES, Directory, type DirectoryOptions } from './directory';
import { indexRows } from './entry';
import { attachZones, type Zones } from './zones';
import { upgradeLegacyChanges } from './changelog-upgrade';

let schemaSingleton: Schema | undefined;

/** The linked schema (built once per process). */
export function loadSchema(): Schema {
  schemaSingleton ??= new Schema(allModules);
  return schemaSingleton;
}

export interface OpenDirectoryOptions extends DirectoryOptions {
  /** SQLite file, or ':memory:'. */
  file: string;
  /** Attribute names indexed besides DEFAULT_INDEXES. */
  extraIndexes?: readonly string[];
  /**
   * A reader: a read-only connection to a store the writer has opened (its
   * schema, index set and change log as the writer left them), following
   * `clock` (the writer's: pass its buffer). Default false: the writer.
   */
  readOnly?: boolean;
  /** The catalog zone to serve (RFC 9432, catalog.ts): its name, lower case without the trailing dot. */
  catalog?: string;
  /** DCMX_DNSSEC: a zone born in a write gets its DNSSEC key in it (dnssec-state.ts). Default false (as in unit tests). */
  dnssec?: boolean;
}

/** The directory and the domain views whose hooks ride on its write path. */
export interface Services {
  directory: Directory;
  zones: Zones;
}

/**
 * Opens the store and returns the directory over it (not yet bootstrapped),
 * with every write-path hook registered, so the CLI and the server apply the
 * same rules. Change-log rows of an older store are converted to the feed's
 * form first (changelog-upgrade.ts). With `readOnly`, a reader instead (see
 * the module comment): nothing is migrated, reindexed or converted, and a
 * store the writer has not readied is refused (StorageError).
 */
export function openDirectory(opts: OpenDirectoryOptions): Services {
  const schema = loadSchema();
  const indexed = new Set(DEFAULT_INDEXES);
  for (const a of opts.extraIndexes ?? []) {
    const at = schema.attr(a);
    if (!at) throw new Error(`unknown attribute '${a}' in the index list`);
    indexed.add(at.lname);
  }
  const key = [...indexed].sort().join(',');
  if (opts.readOnly) {
    const reader = Store.openReader(opts.file, indexed);
    try {
      const have = reader.getMeta('indexed');
      // Queries are planned by the index set: a reader must know the one the writer built.
      if (have !== key) throw new StorageError(`the store is indexed for ${have ?? 'nothing'}, not ${key}: the writer opens it first, with the same indexes`);
      if (reader.hasLegacyChanges()) throw new StorageError('the change log is not converted yet: the writer opens the store first');
    } catch (e) {
      reader.close();
      throw e;
    }
    const directory = new Directory(reader, schema, opts);
    return { directory, zones: attachZones(directory, opts.catalog) };
  }
  const store = Store.open(opts.file, indexed);
  if (store.getMeta('indexed') !== key) {
    store.reindex((e) => indexRows(schema, e.attrs, indexed));
    store.setMeta('indexed', key);
  }
  upgradeLegacyChanges(store);
  const directory = new Directory(store, schema, opts);
  return { directory, zones: attachZones(directory, opts.catalog, { dnssec: opts.dnssec }) };
}
