-- The mail queue: a row per accepted message (its bytes are in a spool file,
-- fsynced before this row commits) and a row per recipient with its state.
CREATE TABLE queue_messages (
  id          TEXT PRIMARY KEY,     -- queue id, also the spool file name
  received_at INTEGER NOT NULL,     -- ms since the epoch
  sender      TEXT NOT NULL,        -- envelope reverse-path, '' for the null sender
  size        INTEGER NOT NULL,
  spool       TEXT NOT NULL         -- spool file path
) WITHOUT ROWID;

CREATE TABLE queue_recipients (
  message_id   TEXT NOT NULL,
  rcpt         TEXT NOT NULL,       -- envelope forward-path as accepted
  state        TEXT NOT NULL CHECK (state IN ('queued', 'held')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  next_attempt INTEGER NOT NULL,    -- ms since the epoch
  last_error   TEXT,
  PRIMARY KEY (message_id, rcpt)
) WITHOUT ROWID;
CREATE INDEX queue_due ON queue_recipients(state, next_attempt);
