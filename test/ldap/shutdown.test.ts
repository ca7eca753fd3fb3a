/**
 * The LDAP endpoint's close (a stop, or the old process of a reload): the
 * listener stops accepting, and a connection is served until its client has
 * been quiet for a moment, so a client in the middle of an exchange is
 * answered rather than cut off; only then comes the Notice of Disconnection
 * (RFC 4511 §4.4.1, unavailable) and the connection is closed.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startTestAppliance } from '../helpers';
import { connect, Responses } from '../fixtures/ldap';
import { searchPdu } from '../fixtures/ber';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a client that goes on sending after the close began is answered, then gets the Notice of Disconnection once quiet', async () => {
  const t = await startTestAppliance();
  let closing: Promise<void> | undefined;
  try {
    const r = new Responses(await connect(t.app.ports.ldap));
    // A search every 20 ms, each answered before the next.
    let id = 0;
    let sending = true;
    const pump = (async () => {
      while (sending) {
        r.sock.write(searchPdu(++id, '', 0));
        assert.equal((await r.result(id, 10_000)).code, 0, `search ${id} answered`);
        await pause(20);
      }
    })();
    await pause(100);
    const atClose = id;
    closing = t.app.close();
    // Half a second of requests while the appliance closes: every one answered (the pump throws otherwise).
    await pause(500);
    sending = false;
    await pump;
    const answered = id;
    // Quiet now: RFC 4511 §4.4.1, an unsolicited extended response, message id 0, unavailable (52).
    await r.until(() => r.all.some((m) => m.id === 0 && m.tag === 0x78 && m.code === 52), 'the Notice of Disconnection', 10_000);
    assert.ok(answered > atClose, `searches answered after the close began: ${answered - atClose}`);
    r.sock.destroy();
    await closing;
  } finally {
    if (!closing) await t.app.close();
  }
});
