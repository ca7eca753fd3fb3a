-- Who submitted a message of our own users (server/mta/dkim-sign.ts): the
-- DN an SMTP AUTH client authenticated as (RFC 4954), NULL when the mail
-- came from DCMX_RELAY_NETWORKS or was made here (a DSN). DKIM signs an
-- authenticated user's mail only with the key of a domain that user may send
-- as, so a user of one hosted domain cannot get mail signed by another.
ALTER TABLE queue_messages ADD COLUMN submitter TEXT;
