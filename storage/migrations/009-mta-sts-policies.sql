-- MTA-STS policies of recipient domains as the sending side fetched them
-- (server/mta/mta-sts.ts). RFC 8461 §5.1: a policy is cached for its
-- max_age; kept here, it stays in force across a restart, so an attacker who
-- strips the _mta-sts record cannot turn it off by waiting for one (§10.2).
-- mx: the mx patterns, one per line; expires: ms since the epoch.
CREATE TABLE mta_sts_policies (
  domain TEXT PRIMARY KEY,
  id TEXT NOT NULL,
  mode TEXT NOT NULL,
  mx TEXT NOT NULL,
  max_age INTEGER NOT NULL,
  expires INTEGER NOT NULL
);
