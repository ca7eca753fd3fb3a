"""Checks DNSSEC signatures with dnspython (Debian python3-dnspython), an independent validator.

Usage: /usr/bin/python3 dnssec-validate.py NOW < records

stdin holds RRs in master-file form, one a line (`owner. TTL IN TYPE RDATA`): DNSKEY RRsets,
the RRsets signed, and RRSIGs over them. For every RRSIG it prints one line,
`ok OWNER TYPE` or `bad OWNER TYPE: why`, after validating the RRset it covers against the
DNSKEY RRset of its signer at time NOW (seconds since the epoch).
"""
import re
import sys

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

now = float(sys.argv[1])
rrsets = {}
sigs = []
for line in sys.stdin.read().splitlines():
    if not line.strip():
        continue
    owner, ttl, cls, rtype, text = line.split(None, 4)
    if rtype.upper() == 'NSEC':
        text = re.sub(r'\bNXNAME\b', 'TYPE128', text)  # RFC 9824, newer than dnspython 2.3
    rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), text)
    if rd.rdtype == dns.rdatatype.RRSIG:
        sigs.append((owner.lower(), rd))
        continue
    key = (owner.lower(), rtype.upper())
    rs = rrsets.get(key)
    if rs is None:
        rs = rrsets[key] = dns.rrset.RRset(dns.name.from_text(owner), dns.rdataclass.IN, rd.rdtype)
    rs.add(rd, int(ttl))

for owner, sig in sigs:
    covered = dns.rdatatype.to_text(sig.type_covered)
    target = rrsets.get((owner, covered))
    keys = rrsets.get((sig.signer.to_text().lower(), 'DNSKEY'))
    try:
        if target is None or keys is None:
            raise ValueError('RRset or DNSKEY missing')
        dns.dnssec.validate_rrsig(target, sig, {sig.signer: keys}, now=now)
        print(f'ok {owner} {covered}')
    except Exception as e:  # noqa: BLE001 - every failure is a finding to print
        print(f'bad {owner} {covered}: {e!r}')
