"""Verifies the DKIM signatures of the message on stdin with dkimpy (Debian
python3-dkim), resolving key records through dnspython at 127.0.0.1:PORT
(our DNS port), never the machine's resolver. Prints "pass" and exits 0 when
the signature verifies, prints "fail" and exits 1 otherwise.

Usage: /usr/bin/python3 dkim-verify.py PORT < message
"""
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


ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=txt)
print('pass' if ok else 'fail')
sys.exit(0 if ok else 1)
