/** AUTH is advertised only over TLS (as Postfix's smtpd_tls_auth_only): EHLO before and after STARTTLS. */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { startTestAppliance, type TestAppliance } from '../helpers';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
});
after(async () => t.close());

/** Reads one complete SMTP reply (the line whose code is followed by a space). */
function reply(s: net.Socket | tls.TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const on = (d: Buffer) => {
      buf += d.toString();
      if (/(^|\r\n)\d{3} [^\r\n]*\r\n$/.test(buf)) {
        s.off('data', on);
        resolve(buf);
      }
    };
    s.on('data', on);
  });
}

test('EHLO offers AUTH only after STARTTLS', async () => {
  const sock = net.connect(t.app.ports.smtp, '127.0.0.1');
  await reply(sock);
  sock.write('EHLO client.test\r\n');
  const plain = await reply(sock);
  assert.match(plain, /STARTTLS/);
  assert.doesNotMatch(plain, /AUTH/);
  sock.write('STARTTLS\r\n');
  assert.match(await reply(sock), /^220/);
  const secure = tls.connect({ socket: sock, rejectUnauthorized: false, servername: 'mx.dcmx.test' });
  await new Promise((r) => secure.once('secureConnect', r));
  secure.write('EHLO client.test\r\n');
  const overTls = await reply(secure);
  assert.match(overTls, /AUTH PLAIN LOGIN/);
  assert.doesNotMatch(overTls, /STARTTLS/);
  secure.end('QUIT\r\n');
});
