-- The change log as a feed of data: every row carries the entry's UUID
-- (RFC 4530 entryUUID; for a delete, the deleted entry's) and its
-- modifications as JSON, which the caches, the routing table and Content
-- Sync (RFC 4533) read. LDIF is produced from them only where it is shown
-- (the `changes` attribute of cn=changelog entries).
--   add:    data = {"attributes": {"cn": ["x"], ...}}      (user attributes, stored form)
--   modify: data = {"modifications": [{"op": "replace", "type": "mail", "values": ["..."]}, ...]}
--   delete, modrdn: data is NULL (modrdn's fields have their own columns)
ALTER TABLE changelog ADD COLUMN entry_uuid TEXT;
ALTER TABLE changelog ADD COLUMN data TEXT;

-- Rows written before this migration hold their modifications as LDIF in
-- `changes` (and no entry_uuid); those of deletes and renames are marked
-- with an empty `changes`. The directory converts them all when it opens
-- the store (server/directory/changelog-upgrade.ts) and clears `changes`;
-- new rows never set it. The index finds the rows left to convert at once.
UPDATE changelog SET changes = '' WHERE changes IS NULL;
CREATE INDEX changelog_legacy ON changelog(change_number) WHERE changes IS NOT NULL;
