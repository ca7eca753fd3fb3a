-- Small messages keep their bytes in the queue row itself: one commit (one
-- fsync) makes them durable, with no spool file to create, sync and remove.
ALTER TABLE queue_messages ADD COLUMN body BLOB;
