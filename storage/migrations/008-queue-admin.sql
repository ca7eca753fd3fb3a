-- The operator's queue tools (server/mta/queue-admin.ts), after Postfix's
-- hold queue and active queue:
-- held_at: when the operator put the whole message on hold (`dcmx queue hold`);
--   NULL = not held. Delivery never takes a held message.
-- delivering_since: when a delivery attempt of this process or another
--   took the message (its lease: the attempt owns the message until it
--   settles, or until the lease runs out, server/mta/queue-admin.ts
--   ACTIVE_LEASE_MS); NULL = no attempt under way. Delete and bounce are
--   refused while an attempt owns it, so a message is never delivered and
--   bounced, or deleted under an attempt that would then settle it.
ALTER TABLE queue_messages ADD COLUMN held_at INTEGER;
ALTER TABLE queue_messages ADD COLUMN delivering_since INTEGER;
-- When the recipient's last attempt ended (ms); NULL before the first.
ALTER TABLE queue_recipients ADD COLUMN last_attempt INTEGER;
