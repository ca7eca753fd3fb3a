-- What the client declared on MAIL FROM, which the smtp channel must honour
-- downstream: SMTPUTF8 (RFC 6531 §3.2: only to a next hop that offers it)
-- and BODY=8BITMIME (RFC 6152 §3: only to a next hop that offers 8BITMIME).
ALTER TABLE queue_messages ADD COLUMN smtputf8 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_messages ADD COLUMN body_8bitmime INTEGER NOT NULL DEFAULT 0;
