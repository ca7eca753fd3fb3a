-- The DNS view's journal: per zone, the records removed and added by each
-- serial change (RFC 1995 IXFR answers come from here), written in the same
-- transaction as the directory change that caused it.
CREATE TABLE zone_journal (
  id            INTEGER PRIMARY KEY,
  zone          TEXT NOT NULL,       -- apex name, lower case, no trailing dot
  serial_from   INTEGER NOT NULL,
  serial_to     INTEGER NOT NULL,
  removed       TEXT NOT NULL,       -- JSON array of master-file RR lines
  added         TEXT NOT NULL,       -- JSON array of master-file RR lines
  change_number INTEGER NOT NULL     -- last change log row of the transaction
);
CREATE INDEX zone_journal_zone ON zone_journal(zone, id);
