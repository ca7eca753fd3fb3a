/**
 * The postmaster of this host (RFC 5321 §4.5.1): `<postmaster>` without a
 * domain, and `postmaster@[address]` at an address literal (§4.1.3) that is
 * one of ours. Both are accepted at RCPT and delivered to the postmaster's
 * Maildir, `postmaster@<DCMX_HOSTNAME>`.
 */

/**
 * True when `rcpt` names this host's postmaster: `postmaster` alone, or at an
 * address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) for which `ours` is
 * true. The local part is compared without regard to case (§4.5.1).
 */
export function isOurPostmaster(rcpt: string, ours: (ip: string) => boolean): boolean {
  if (rcpt.toLowerCase() === 'postmaster') return true;
  const m = /^postmaster@\[(?:ipv6:)?([^\]]+)\]$/i.exec(rcpt);
  return m !== null && ours(m[1]);
}
