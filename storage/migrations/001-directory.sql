-- Directory entries, their attribute indexes, the change log and settings.

-- One row per entry. ndn is the normalised DN (distinguishedNameMatch);
-- rpath is the normalised RDNs from the root down, each followed by \x01, so
-- that a subtree is one range scan: rpath >= base AND rpath < base(\x02).
CREATE TABLE entries (
  id        INTEGER PRIMARY KEY,
  ndn       TEXT NOT NULL UNIQUE,
  rpath     TEXT NOT NULL UNIQUE,
  parent_id INTEGER,
  dn        TEXT NOT NULL,
  attrs     TEXT NOT NULL            -- JSON object: canonical attribute name -> [values]
);
CREATE INDEX entries_parent ON entries(parent_id);

-- Equality/presence/substring index: one row per (attribute, normalised value, entry).
CREATE TABLE attr_index (
  attr     TEXT NOT NULL,            -- lower-case canonical attribute name
  norm     TEXT NOT NULL,            -- value in its equality rule's normal form
  entry_id INTEGER NOT NULL,
  PRIMARY KEY (attr, norm, entry_id)
) WITHOUT ROWID;
CREATE INDEX attr_index_entry ON attr_index(entry_id);

-- draft-good-ldap-changelog; AUTOINCREMENT so numbers are never reused after trimming.
CREATE TABLE changelog (
  change_number  INTEGER PRIMARY KEY AUTOINCREMENT,
  change_time    TEXT NOT NULL,      -- GeneralizedTime
  target_dn      TEXT NOT NULL,
  target_ndn     TEXT NOT NULL,
  change_type    TEXT NOT NULL CHECK (change_type IN ('add', 'delete', 'modify', 'modrdn')),
  changes        TEXT,               -- LDIF (RFC 2849) body of the change
  new_rdn        TEXT,
  delete_old_rdn INTEGER,
  new_superior   TEXT,
  new_ndn        TEXT,               -- for modrdn: the normalised DN after the change
  actor          TEXT                -- DN of the writer
);

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
