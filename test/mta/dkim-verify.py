"""Verifies every DKIM signature of the message on stdin with dkimpy (Debian
python3-dkim; Ed25519, RFC 8463, through python3-nacl), resolving key
records through dnspython at 127.0.0.1:PORT (our DNS port), never the
machine's resolver. Prints one line per signature, `<a=> <d=> <s=> pass` or
`... fail`, then `pass` and exits 0 when there is a signature and every one
verifies; else the last line is `fail` and it exits 1.

Usage: /usr/bin/python3 dkim-verify.py PORT < message
"""
import re
import sys

import dkim
import dns.resolver

resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = ['127.0.0.1']
resolver.port = int(sys.argv[1])


def txt(name, timeout=5):
    """dkimpy's dnsfunc: the first TXT record of `name`, its strings joined (RFC 6376 §3.6.2.2)."""
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = resolver.resolve(name, 'TXT', lifetime=timeout, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return None
    for rrset in answer.response.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            return b''.join(list(rrset.items)[0].strings)
    return None


message = sys.stdin.buffer.read()
d = dkim.DKIM(message)
signatures = [v for (k, v) in d.headers if k.lower() == b'dkim-signature']
verdicts = []
for i, sig in enumerate(signatures):
    tags = dict(re.findall(rb'([a-z]+)\s*=\s*([^;]*)', re.sub(rb'\s+', b'', sig)))
    try:
        ok = dkim.DKIM(message).verify(idx=i, dnsfunc=txt)
    except dkim.DKIMException as e:
        ok = False
        print(f'error: {e}', file=sys.stderr)
    verdicts.append(ok)
    print(' '.join(tags.get(t, b'-').decode() for t in (b'a', b'd', b's')), 'pass' if ok else 'fail')
ok = len(verdicts) > 0 and all(verdicts)
print('pass' if ok else 'fail')
sys.exit(0 if ok else 1)
