/**
 * Libraries loaded at their first use rather than at start: those that the
 * serving paths (an LDAP search, a DNS answer, an SMTP RCPT) never need —
 * the DKIM signer, the SMTP client of delivery, the public suffix list (the
 * self-signed certificate maker runs in a worker thread, cert-maker.ts, and
 * leaves with it). Each costs megabytes of heap and code in
 * every appliance, used or not (issue 14: RSS with the DNS load <= 100 MB),
 * and time at start. The first user pays the load (tens of milliseconds), once.
 */

/** `load` (a `require`, or anything else costly to make and maybe never needed), called at the first call of the returned function; its result is kept for the next ones. */
export function lazily<T>(load: () => T): () => T {
  let loaded: { value: T } | undefined;
  return () => (loaded ??= { value: load() }).value;
}
