/**
 * A null LDAP server for calibrating the load generator: it answers every
 * BindRequest with success and every SearchRequest with one canned
 * SearchResultEntry (about the size of a benchmark user) and a
 * SearchResultDone, doing no other work. Run as a child beside the
 * generator, it shows how many searches per second the generator can drive.
 *
 * `node dist/bench/nullserver.js` prints `null ready port=N`.
 */
import * as net from 'node:net';
import { message, octets, tlv } from './wire';
import { ssha } from './dit';

function entryBody(): Buffer {
  const attr = (t: string, ...vs: string[]) => tlv(0x30, octets(t), tlv(0x31, ...vs.map((v) => octets(v))));
  return tlv(
    0x64,
    octets('uid=u1234,ou=people,dc=d1234,dc=test,o=internet'),
    tlv(
      0x30,
      attr('objectClass', 'top', 'person', 'organizationalPerson', 'inetOrgPerson', 'mailRecipient', 'inetMailUser'),
      attr('uid', 'u1234'),
      attr('cn', 'User 1234'),
      attr('sn', 'User1234'),
      attr('givenName', 'Bench'),
      attr('mail', 'u1234@d1234.test'),
      attr('userPassword', ssha('x')),
    ),
  );
}

const ENTRY = entryBody();
const DONE = Buffer.from([0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]);
const BIND_OK = Buffer.from([0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]);

function serve(sock: net.Socket): void {
  sock.setNoDelay(true);
  let rest: Buffer | null = null;
  sock.on('error', () => sock.destroy());
  sock.on('data', (chunk: Buffer) => {
    const b = rest ? Buffer.concat([rest, chunk]) : chunk;
    const out: Buffer[] = [];
    let off = 0;
    while (off + 2 <= b.length) {
      let p = off + 1;
      let len = b[p++];
      if (len & 0x80) {
        const k = len & 0x7f;
        if (p + k > b.length) break;
        len = 0;
        for (let i = 0; i < k; i++) len = len * 256 + b[p++];
      }
      const end = p + len;
      if (end > b.length) break;
      const idLen = b[p + 1];
      let id = 0;
      for (let i = 0; i < idLen; i++) id = id * 256 + b[p + 2 + i];
      const op = b[p + 2 + idLen];
      if (op === 0x63) {
        out.push(message(id, ENTRY), message(id, DONE));
      } else if (op === 0x60) {
        out.push(message(id, BIND_OK));
      } else if (op === 0x42) {
        sock.end();
        return;
      }
      off = end;
    }
    rest = off < b.length ? b.subarray(off) : null;
    if (out.length) sock.write(out.length === 1 ? out[0] : Buffer.concat(out));
  });
}

if (require.main === module) {
  const server = net.createServer(serve);
  server.listen(0, '127.0.0.1', () => {
    console.log(`null ready port=${(server.address() as net.AddressInfo).port}`);
  });
  process.on('SIGTERM', () => process.exit(0));
}
