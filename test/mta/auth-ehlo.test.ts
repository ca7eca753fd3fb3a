/** AUTH is advertised only over TLS (as Postfix's smtpd_tls_auth_only): EHLO before and after STARTTLS. */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startTestAppliance, type TestAppliance } from '../helpers';
import { RawSmtp } from './fixture';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
});
after(async () => t.close());

test('EHLO offers AUTH only after STARTTLS', async () => {
  const { client } = await RawSmtp.connect(t.app.ports.smtp);
  try {
    const plain = (await client.cmd('EHLO client.test')).raw;
    assert.match(plain, /STARTTLS/);
    assert.doesNotMatch(plain, /AUTH/);
    await client.starttls();
    const overTls = (await client.cmd('EHLO client.test')).raw;
    assert.match(overTls, /AUTH PLAIN LOGIN/);
    assert.doesNotMatch(overTls, /STARTTLS/);
  } finally {
    await client.quit();
  }
});
