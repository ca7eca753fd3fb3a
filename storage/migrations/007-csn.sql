-- Content Sync (RFC 4533) with OpenLDAP consumers: every change gets a CSN
-- (change sequence number, OpenLDAP's `YYYYmmddHHMMSS.uuuuuuZ#count#sid#mod`,
-- see server/directory/csn.ts), increasing with change_number. The provider's
-- sync cookies carry the CSN of the last change a consumer has seen; this
-- column maps it back to a position in the change log.
ALTER TABLE changelog ADD COLUMN csn TEXT;
-- Rows written before: the change's time (seconds) and its number as count,
-- so that they increase with change_number as new CSNs do.
UPDATE changelog SET csn = substr(change_time, 1, 14) || '.000000Z#' || printf('%06x', change_number % 16777216) || '#000#000000';
CREATE INDEX changelog_csn ON changelog(csn);

-- Every stored entry carries entryCSN, the CSN of the last change written to
-- it (operational, as OpenLDAP serves it); entries written before get one
-- from their modifyTimestamp.
UPDATE entries SET attrs = json_set(attrs, '$.entryCSN',
    json_array(substr(json_extract(attrs, '$.modifyTimestamp[0]'), 1, 14) || '.000000Z#000000#000#000000'))
  WHERE json_extract(attrs, '$.entryCSN') IS NULL AND json_extract(attrs, '$.modifyTimestamp[0]') IS NOT NULL;

-- A sync refresh looks entries up by their RFC 4530 entryUUID.
CREATE INDEX entries_uuid ON entries(json_extract(attrs, '$.entryUUID[0]'));
