/**
 * Opens the directory over a store file: loads the schema, opens SQLite with
 * the configured indexes (rebuilding the index when the set changed).
 */
import { Schema } from '../../schema/registry';
import { allModules } from '../../schema/definitions';
import { Store } from '../../storage/store';
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
 * form first (changelog-upgrade.ts).
 */
export function openDirectory(opts: OpenDirectoryOptions): Services {
  const schema = loadSchema();
  const indexed = new Set(DEFAULT_INDEXES);
  for (const a of opts.extraIndexes ?? []) {
    const at = schema.attr(a);
    if (!at) throw new Error(`unknown attribute '${a}' in the index list`);
    indexed.add(at.lname);
  }
  const store = Store.open(opts.file, indexed);
  const key = [...indexed].sort().join(',');
  if (store.getMeta('indexed') !== key) {
    store.reindex((e) => indexRows(schema, e.attrs, indexed));
    store.setMeta('indexed', key);
  }
  upgradeLegacyChanges(store);
  const directory = new Directory(store, schema, opts);
  return { directory, zones: attachZones(directory) };
}
