-- Mail of our own users (server/mta/dkim-sign.ts): 1 when the message was
-- sent by a client that may relay (SMTP AUTH, DCMX_RELAY_NETWORKS) or made
-- here (a DSN). Only such mail is DKIM-signed at delivery (RFC 6376 §1.1:
-- a signer vouches for the message), so mail from outside that merely names
-- a hosted domain is never signed.
ALTER TABLE queue_messages ADD COLUMN submitted INTEGER NOT NULL DEFAULT 0;
