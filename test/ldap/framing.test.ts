import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  FramingError,
  FramingErrorReason,
  NOTICE_OF_DISCONNECTION_OID,
  PduFramer,
  noticeOfDisconnection,
  validateBer,
  validateLdapMessage,
} from '../../server/ldap-framing';
import { prng } from '../prng';
import {
  and, berLength, bindRequest, bool, control, enumerated, eq, extensible, ge, int, message, not, octets, or, present, searchRequest, seq, set, str, substr, tlv,
  unbindRequest,
} from '../fixtures/ber';

/* eslint-disable @typescript-eslint/no-var-requires */
const { LdapMessage } = require('@ldapjs/messages');
const { BerReader } = require('@ldapjs/asn1');

const LIMITS = { maxPdu: 1024 * 1024, maxDepth: 64 };

/** The literal bytes of a simple bind: messageID 1, version 3, "cn=admin" / "secret". */
const BIND_HEX = '301a02010160150201030408636e3d61646d696e8006736563726574';

function parseLdap(buf: Buffer): any {
  return LdapMessage.parse(new BerReader(buf));
}

function expectFraming(fn: () => unknown, reason: FramingErrorReason): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FramingError, `expected FramingError, got ${String(err)}`);
    assert.equal(err.reason, reason, `reason (message: ${err.message})`);
    return true;
  });
}

/** Every request and response shape ldapjs knows, well formed. */
function sampleMessages(): Buffer[] {
  const paged = control('1.2.840.113556.1.4.319', false, seq(int(100), octets('')));
  return [
    Buffer.from(BIND_HEX, 'hex'),
    message(2, tlv(0x60, int(3), octets(''), str(0x80, ''))), // anonymous bind
    message(3, searchRequest('dc=example,dc=com', and(eq('uid', 'alice'), present('objectClass')), ['cn', 'mail'])),
    message(
      4,
      searchRequest(
        'ou=people,dc=example,dc=com',
        or(substr('cn', 'Ba', ['b'], 'sen'), not(ge('uidNumber', '1000')), extensible('2.5.13.2', 'cn', 'x', true), and()),
        [],
        1,
      ),
      [paged, control('2.16.840.1.113730.3.4.2', true)],
    ),
    message(
      5,
      tlv(
        0x66,
        octets('uid=alice,dc=example,dc=com'),
        seq(
          seq(enumerated(2), seq(octets('mail'), set(octets('alice@example.com'), octets('a@example.com')))),
          seq(enumerated(1), seq(octets('description'), set())),
        ),
      ),
    ),
    message(
      6,
      tlv(
        0x68,
        octets('uid=bob,dc=example,dc=com'),
        seq(seq(octets('objectClass'), set(octets('top'), octets('person'))), seq(octets('cn'), set(octets('Bob')))),
      ),
    ),
    message(7, str(0x4a, 'uid=bob,dc=example,dc=com')),
    message(8, tlv(0x6c, octets('uid=bob,dc=example,dc=com'), octets('uid=robert'), bool(true), str(0x80, 'ou=x,dc=example,dc=com'))),
    message(9, tlv(0x6e, octets('uid=bob,dc=example,dc=com'), seq(octets('cn'), octets('Bob')))),
    message(10, tlv(0x50, [0x05])), // abandon 5
    message(11, tlv(0x77, str(0x80, '1.3.6.1.4.1.4203.1.11.3'))), // whoami
    message(12, tlv(0x77, str(0x80, '1.3.6.1.4.1.4203.1.11.1'), tlv(0x81, seq(str(0x80, 'uid=bob'), str(0x82, 'new'))))),
    message(13, tlv(0x77, str(0x80, '1.3.6.1.1.8'), tlv(0x81, seq(int(4))))), // cancel
    message(14, unbindRequest()),
    // Responses.
    message(1, tlv(0x61, enumerated(0), octets(''), octets(''))),
    message(3, tlv(0x64, octets('uid=alice,dc=example,dc=com'), seq(seq(octets('cn'), set(octets('Alice')))))),
    message(3, tlv(0x73, octets('ldap://other/dc=example,dc=com'))),
    message(3, tlv(0x65, enumerated(10), octets(''), octets(''), tlv(0xa3, octets('ldap://other/')))),
    noticeOfDisconnection(2, 'bye'),
  ];
}

// ---------------------------------------------------------------------------

describe('PduFramer: valid PDUs', () => {
  test('the BER builder reproduces the literal bind request', () => {
    const built = message(1, bindRequest('cn=admin', 'secret'));
    assert.equal(built.toString('hex'), BIND_HEX);
  });

  test('a bind request passes through whole and is real LDAP (ldapjs decodes it)', () => {
    const pdu = Buffer.from(BIND_HEX, 'hex');
    const framer = new PduFramer(LIMITS);
    const out = framer.push(pdu);
    assert.equal(out.length, 1);
    assert.deepEqual(out[0], pdu);
    assert.equal(framer.pending, 0);
    const msg = parseLdap(out[0]);
    assert.equal(msg.type, 'BindRequest');
    assert.equal(msg.messageId, 1);
    assert.equal(msg.version, 3);
    assert.equal(msg.name, 'cn=admin');
    assert.equal(msg.credentials, 'secret');
  });

  test('a search request decodes with ldapjs to the fields built', () => {
    const pdu = message(7, searchRequest('dc=example,dc=com', and(eq('uid', 'alice'), present('objectClass')), ['cn', 'mail']));
    const [out] = new PduFramer(LIMITS).push(pdu);
    const msg = parseLdap(out);
    assert.equal(msg.type, 'SearchRequest');
    assert.equal(msg.messageId, 7);
    assert.equal(msg.baseObject.toString(), 'dc=example,dc=com');
    assert.equal(msg.filter.toString(), '(&(uid=alice)(objectClass=*))');
    assert.deepEqual(msg.attributes, ['cn', 'mail']);
  });

  test('every operation shape is accepted and ldapjs parses each', () => {
    for (const pdu of sampleMessages()) {
      const out = new PduFramer(LIMITS).push(pdu);
      assert.equal(out.length, 1, pdu.toString('hex'));
      assert.doesNotThrow(() => parseLdap(out[0]), pdu.toString('hex'));
    }
  });

  test('several PDUs in one chunk come out in order', () => {
    const pdus = sampleMessages();
    const framer = new PduFramer(LIMITS);
    const out = framer.push(Buffer.concat(pdus));
    assert.deepEqual(out, pdus);
    assert.equal(framer.pending, 0);
  });

  test('a stream split at every position yields the same PDUs', () => {
    const pdus = [
      Buffer.from(BIND_HEX, 'hex'),
      message(2, searchRequest('dc=example,dc=com', present('objectClass'), ['cn'])),
      message(3, unbindRequest()),
    ];
    const stream = Buffer.concat(pdus);
    for (let i = 0; i <= stream.length; i++) {
      const framer = new PduFramer(LIMITS);
      const out = [...framer.push(stream.subarray(0, i)), ...framer.push(stream.subarray(i))];
      assert.deepEqual(out, pdus, `split at ${i}`);
      assert.equal(framer.pending, 0);
    }
    // Every pair of split points, too (three chunks).
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j++) {
        const framer = new PduFramer(LIMITS);
        const out = [
          ...framer.push(stream.subarray(0, i)),
          ...framer.push(stream.subarray(i, j)),
          ...framer.push(stream.subarray(j)),
        ];
        assert.deepEqual(out, pdus, `split at ${i}, ${j}`);
      }
    }
  });

  test('one byte at a time, with pending tracking', () => {
    const pdus = sampleMessages();
    const stream = Buffer.concat(pdus);
    const framer = new PduFramer(LIMITS);
    const out: Buffer[] = [];
    let sinceLast = 0;
    for (let i = 0; i < stream.length; i++) {
      const got = framer.push(stream.subarray(i, i + 1));
      sinceLast++;
      if (got.length) {
        assert.equal(got.length, 1);
        assert.equal(got[0].length, sinceLast);
        sinceLast = 0;
        out.push(...got);
      }
      assert.equal(framer.pending, sinceLast);
    }
    assert.deepEqual(out, pdus);
  });

  // Quadratic copying would take minutes here: the test's timeout is the guard, no duration is asserted.
  test('a large PDU fed one byte at a time is assembled in linear time', { timeout: 60_000 }, () => {
    const photo = Buffer.alloc(512 * 1024, 0x5a);
    const pdu = message(
      9,
      tlv(0x68, octets('uid=big,dc=example,dc=com'), seq(seq(octets('jpegPhoto'), set(octets(photo))))),
    );
    const framer = new PduFramer(LIMITS);
    let out: Buffer[] = [];
    for (let i = 0; i < pdu.length; i++) {
      out = framer.push(pdu.subarray(i, i + 1));
      if (i < pdu.length - 1) assert.equal(out.length, 0);
    }
    assert.equal(out.length, 1);
    assert.ok(out[0].equals(pdu));
  });

  test('a PDU of exactly maxPdu bytes is accepted, one more byte is not', () => {
    const base = message(1, bindRequest('cn=x', ''));
    const pad = (total: number): Buffer => {
      // Grow the password until the whole PDU is `total` bytes.
      for (let n = 0; ; n++) {
        const pdu = message(1, bindRequest('cn=x', 'p'.repeat(n)));
        if (pdu.length === total) return pdu;
        if (pdu.length > total) throw new Error('cannot hit size');
      }
    };
    const limit = 300;
    assert.ok(base.length < limit);
    assert.equal(new PduFramer({ maxPdu: limit, maxDepth: 8 }).push(pad(limit)).length, 1);
    expectFraming(() => new PduFramer({ maxPdu: limit, maxDepth: 8 }).push(pad(limit + 1)), 'too-large');
  });
});

describe('PduFramer: rejections', () => {
  test('30 84 ff ff ff ff is too-large from those 6 bytes alone', () => {
    const framer = new PduFramer(LIMITS);
    expectFraming(() => framer.push(Buffer.from('3084ffffffff', 'hex')), 'too-large');
    // …and, byte by byte, as soon as the first length octet shows it.
    const slow = new PduFramer(LIMITS);
    assert.deepEqual(slow.push(Buffer.from([0x30])), []);
    assert.deepEqual(slow.push(Buffer.from([0x84])), []);
    expectFraming(() => slow.push(Buffer.from([0xff])), 'too-large');
  });

  test('a declared length of 2 GiB is too-large before any body arrives', () => {
    expectFraming(() => new PduFramer(LIMITS).push(Buffer.from('308480000000', 'hex')), 'too-large');
  });

  test('a declared length over maxPdu is too-large', () => {
    const framer = new PduFramer({ maxPdu: 1000, maxDepth: 16 });
    expectFraming(() => framer.push(Buffer.from('308203e8', 'hex')), 'too-large'); // 4 + 1000 > 1000
    const ok = new PduFramer({ maxPdu: 1000, maxDepth: 16 });
    assert.deepEqual(ok.push(Buffer.from('308203e4', 'hex')), []); // 4 + 996 = 1000: wait for the body
    assert.equal(ok.pending, 4);
  });

  test('indefinite length 30 80 is refused', () => {
    expectFraming(() => new PduFramer(LIMITS).push(Buffer.from('3080', 'hex')), 'indefinite-length');
    // Inside the PDU as well.
    const inner = message(1, tlv(0x60, int(3), octets('')));
    const pdu = Buffer.from(inner);
    pdu[6] = 0x80; // the BindRequest's length octet
    expectFraming(() => new PduFramer(LIMITS).push(pdu), 'indefinite-length');
  });

  test('a 5-octet length-of-length is bad-length', () => {
    expectFraming(() => new PduFramer(LIMITS).push(Buffer.from('3085', 'hex')), 'bad-length');
    expectFraming(() => validateBer(Buffer.from('04850000000001ff', 'hex'), 4), 'bad-length');
  });

  test('a first byte other than SEQUENCE is bad-tag', () => {
    expectFraming(() => new PduFramer(LIMITS).push(Buffer.from([0x60])), 'bad-tag');
    expectFraming(() => new PduFramer(LIMITS).push(Buffer.from([0x00])), 'bad-tag');
  });

  test('an inner length overrunning its parent is structure', () => {
    // BindRequest whose DN claims 0x20 bytes where 8 remain in the BindRequest.
    const pdu = Buffer.from(BIND_HEX, 'hex');
    pdu[11] = 0x20;
    expectFraming(() => new PduFramer(LIMITS).push(pdu), 'structure');
    // Same with a multi-octet inner length.
    expectFraming(() => validateBer(Buffer.from('3006048400000010', 'hex'), 4), 'structure');
  });

  test('a 5,000-deep nested AND filter is too-deep', () => {
    let filter = present('objectClass');
    for (let i = 0; i < 5000; i++) filter = and(filter);
    const pdu = message(2, searchRequest('dc=example,dc=com', filter, []));
    assert.ok(pdu.length < LIMITS.maxPdu);
    expectFraming(() => new PduFramer(LIMITS).push(pdu), 'too-deep');
    expectFraming(() => validateBer(pdu, 64), 'too-deep');
    // A modest nesting is fine, and ldapjs copes with it.
    let shallow = present('objectClass');
    for (let i = 0; i < 50; i++) shallow = and(shallow);
    const ok = message(3, searchRequest('dc=example,dc=com', shallow, []));
    const [out] = new PduFramer(LIMITS).push(ok);
    assert.ok(parseLdap(out).filter.toString().startsWith('(&(&'));
    // maxDepth counts the outer SEQUENCE as 1: LDAPMessage, SearchRequest, 50 ANDs.
    assert.doesNotThrow(() => validateLdapMessage(ok, 52));
    expectFraming(() => validateLdapMessage(ok, 51), 'too-deep');
  });

  test('a SearchRequest whose attribute SEQUENCE overruns what remains is structure', () => {
    // ldapjs loops forever on this one: its readString() returns null without advancing.
    const good = message(
      5,
      searchRequest('dc=example', and(eq('uid', 'alice'), present('objectClass')), ['cn', 'mail']),
    );
    assert.ok(good.length >= 70 && good.length <= 80, `length ${good.length}`);
    const bad = Buffer.from(good);
    const attrsAt = bad.length - 12; // 30 0a 04 02 'cn' 04 04 'mail'
    assert.equal(bad[attrsAt], 0x30);
    bad[attrsAt + 1] = 0x7f;
    expectFraming(() => new PduFramer(LIMITS).push(bad), 'structure');
  });

  test('BER-valid but not LDAP: a primitive where ldapjs expects a SEQUENCE is structure', () => {
    // Attribute list as OCTET STRING holding "04 7f": sound BER, but ldapjs enters it
    // (it never checks the constructed bit) and then spins on the overrun inside.
    const op = tlv(0x63, octets('dc=x'), enumerated(2), enumerated(0), int(0), int(0), bool(false), present('cn'), octets(Buffer.from([0x04, 0x7f])));
    const pdu = message(1, op);
    assert.doesNotThrow(() => validateBer(pdu, 64));
    expectFraming(() => new PduFramer(LIMITS).push(pdu), 'structure');
    // Same trick in the controls: a control that is not a SEQUENCE.
    const ctl = message(1, unbindRequest(), [octets(Buffer.from([0x04, 0x7f]))]);
    expectFraming(() => validateLdapMessage(ctl, 64), 'structure');
    // A control with a component too many (ldapjs would take it for the next control).
    const extra = message(1, unbindRequest(), [seq(octets('1.2.3'), bool(true), octets('v'), octets('w'))]);
    expectFraming(() => validateLdapMessage(extra, 64), 'structure');
    // Trailing components inside an operation.
    const trailing = message(1, tlv(0x6e, octets('cn=x'), seq(octets('cn'), octets('x')), tlv(0xa0, seq(octets('1.2.3')))));
    expectFraming(() => validateLdapMessage(trailing, 64), 'structure');
    // A password-modify requestValue with something after its SEQUENCE.
    const pw = message(1, tlv(0x77, str(0x80, '1.3.6.1.4.1.4203.1.11.1'), tlv(0x81, seq(), tlv(0xa0, octets('x')))));
    expectFraming(() => validateLdapMessage(pw, 64), 'structure');
    // Its value must be BER in the first place.
    const pw2 = message(1, tlv(0x77, str(0x80, '1.3.6.1.4.1.4203.1.11.1'), tlv(0x81, [0x30, 0x7f])));
    expectFraming(() => validateLdapMessage(pw2, 64), 'structure');
    // An UnbindRequest with contents: ldapjs steps into them and reads them as controls.
    expectFraming(() => validateLdapMessage(Buffer.from('30080201064203a00504', 'hex'), 64), 'structure');
    // An unrecognised OID's value is opaque and may hold anything.
    const other = message(1, tlv(0x77, str(0x80, '1.2.3.4'), tlv(0x81, [0x30, 0x7f])));
    assert.doesNotThrow(() => validateLdapMessage(other, 64));
  });

  test('envelope rules: messageID and protocolOp', () => {
    expectFraming(() => validateLdapMessage(seq(octets('x'), unbindRequest()), 8), 'bad-tag');
    expectFraming(() => validateLdapMessage(seq(tlv(0x02, [0x80]), unbindRequest()), 8), 'structure'); // negative
    expectFraming(() => validateLdapMessage(seq(tlv(0x02, [0, 0x80, 0, 0, 0]), unbindRequest()), 8), 'structure');
    expectFraming(() => validateLdapMessage(seq(tlv(0x02, []), unbindRequest()), 8), 'structure');
    expectFraming(() => validateLdapMessage(seq(int(1)), 8), 'structure');
    expectFraming(() => validateLdapMessage(seq(int(1), octets('x')), 8), 'bad-tag');
    expectFraming(() => validateLdapMessage(seq(int(1), tlv(0x41)), 8), 'structure'); // no such operation
    expectFraming(() => validateLdapMessage(seq(), 8), 'structure');
    assert.doesNotThrow(() => validateLdapMessage(seq(tlv(0x02, [0x7f, 0xff, 0xff, 0xff]), unbindRequest()), 8));
    // Trailing components after the controls are ignored (RFC 4511 §4).
    assert.doesNotThrow(() => validateLdapMessage(seq(int(1), unbindRequest(), tlv(0xa0), octets('future')), 8));
    // A too-small PDU is refused from its header.
    expectFraming(() => new PduFramer(LIMITS).push(Buffer.from('3003020101', 'hex')), 'structure');
  });

  test('validateBer: tags, encodings, trailing bytes', () => {
    expectFraming(() => validateBer(Buffer.from('1f0100', 'hex'), 4), 'bad-tag'); // high tag number
    expectFraming(() => validateBer(Buffer.from('3003bf0100', 'hex'), 4), 'bad-tag');
    expectFraming(() => validateBer(Buffer.from('30020000', 'hex'), 4), 'bad-tag'); // end-of-contents
    expectFraming(() => validateBer(Buffer.from('2403040100', 'hex'), 4), 'structure'); // constructed OCTET STRING
    expectFraming(() => validateBer(Buffer.from('1000', 'hex'), 4), 'structure'); // primitive SEQUENCE
    expectFraming(() => validateBer(Buffer.from('300004', 'hex'), 4), 'structure'); // trailing byte
    expectFraming(() => validateBer(Buffer.from('3001', 'hex'), 4), 'structure');
    expectFraming(() => validateBer(Buffer.from('30', 'hex'), 4), 'structure');
    expectFraming(() => validateBer(Buffer.alloc(0), 4), 'structure');
    expectFraming(() => validateBer(Buffer.from('30043002', 'hex'), 4), 'structure');
    expectFraming(() => validateBer(Buffer.from('3003308201', 'hex'), 4), 'structure');
    // Non-minimal long-form lengths are fine (BER), up to 4 octets.
    assert.doesNotThrow(() => validateBer(Buffer.from('3084000000050483000000', 'hex'), 4));
    assert.doesNotThrow(() => validateBer(Buffer.from('a0038001ff', 'hex'), 4));
    assert.doesNotThrow(() => validateBer(Buffer.from('30083000310030023000', 'hex'), 4));
    // Depth counts constructed elements only.
    assert.doesNotThrow(() => validateBer(Buffer.from('3003040100', 'hex'), 1));
    expectFraming(() => validateBer(Buffer.from('30023000', 'hex'), 1), 'too-deep');
  });

  test('after a FramingError the framer stays failed', () => {
    const framer = new PduFramer(LIMITS);
    expectFraming(() => framer.push(Buffer.from('3080', 'hex')), 'indefinite-length');
    expectFraming(() => framer.push(Buffer.from(BIND_HEX, 'hex')), 'indefinite-length');
    assert.equal(framer.pending, 0);
  });

  test('a bad PDU after good ones in the same chunk throws', () => {
    const framer = new PduFramer(LIMITS);
    const good = Buffer.from(BIND_HEX, 'hex');
    assert.equal(framer.push(good).length, 1);
    expectFraming(() => framer.push(Buffer.concat([good, Buffer.from('3085', 'hex')])), 'bad-length');
  });

  test('constructor refuses nonsense limits', () => {
    assert.throws(() => new PduFramer({ maxPdu: 0, maxDepth: 8 }), RangeError);
    assert.throws(() => new PduFramer({ maxPdu: 1024, maxDepth: 0 }), RangeError);
    assert.throws(() => new PduFramer({ maxPdu: NaN, maxDepth: 8 }), RangeError);
  });
});

// ---------------------------------------------------------------------------
// Fuzzing.

const INTERESTING = [0x00, 0x01, 0x02, 0x04, 0x0a, 0x30, 0x31, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x85, 0x87, 0xa0, 0xa3, 0xff];

function fuzzInputs(count: number, seed: number): Buffer[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const samples = sampleMessages();
  const inputs: Buffer[] = [];
  for (let n = 0; n < count; n++) {
    const mode = rnd();
    if (mode < 0.3) {
      // Pure noise, sometimes starting like a PDU.
      const len = Math.floor(rnd() * 96);
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i++) b[i] = rnd() < 0.3 ? pick(INTERESTING) : Math.floor(rnd() * 256);
      if (len && rnd() < 0.5) b[0] = 0x30;
      if (len > 1 && rnd() < 0.5) b[1] = Math.min(len - 2, 0x7f);
      inputs.push(b);
    } else {
      // A valid message, mutated a little (or, sometimes, not at all).
      const b = Buffer.from(pick(samples));
      const edits = Math.floor(rnd() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rnd() * b.length);
        const r = rnd();
        if (r < 0.4) b[at] = pick(INTERESTING);
        else if (r < 0.7) b[at] = Math.floor(rnd() * 256);
        else if (r < 0.85) b[at] = (b[at] + (rnd() < 0.5 ? 1 : -1)) & 0xff;
        else b[at] ^= 0x20; // flip the constructed bit
      }
      inputs.push(b);
    }
  }
  return inputs;
}

describe('fuzz', () => {
  test('20,000 random buffers: only FramingError, never a hang, accepted PDUs re-validate', async () => {
    const rnd = prng(0xdcc0de);
    const inputs = fuzzInputs(20_000, Number(process.env.FRAMING_FUZZ_SEED ?? 42));
    const accepted: Buffer[] = [];
    let rejected = 0;
    for (const input of inputs) {
      const framer = new PduFramer({ maxPdu: 4096, maxDepth: 16 });
      try {
        // Random chunking, including empty chunks.
        let i = 0;
        while (i < input.length) {
          const step = Math.floor(rnd() * 8);
          accepted.push(...framer.push(input.subarray(i, i + step)));
          i += step;
        }
      } catch (err) {
        assert.ok(err instanceof FramingError, `non-FramingError ${String(err)} on ${input.toString('hex')}`);
        rejected++;
      }
      try {
        validateBer(input, 16);
      } catch (err) {
        assert.ok(err instanceof FramingError, `validateBer threw ${String(err)} on ${input.toString('hex')}`);
      }
    }
    console.log(`fuzz: ${rejected} rejected, ${accepted.length} PDUs accepted`);
    assert.ok(rejected > 10_000, `rejected ${rejected}`);
    assert.ok(accepted.length > 1000, `accepted ${accepted.length}`);
    for (const pdu of accepted) validateLdapMessage(pdu, 16);

    // Whatever we let through must not hang ldapjs (it may throw). Run it in a
    // worker so that a hang is a test failure rather than a stuck test run.
    await assertLdapjsTerminates(accepted, 60_000);
  });

  test('20,000 structurally mutated messages: whatever passes the schema, ldapjs survives', async () => {
    const inputs = structuralFuzzInputs(20_000, Number(process.env.FRAMING_FUZZ_SEED ?? 7));
    const accepted: Buffer[] = [];
    let berValid = 0;
    for (const input of inputs) {
      try {
        validateBer(input, 16);
        berValid++;
      } catch (err) {
        assert.ok(err instanceof FramingError);
      }
      try {
        accepted.push(...new PduFramer({ maxPdu: 1 << 16, maxDepth: 16 }).push(input));
      } catch (err) {
        assert.ok(err instanceof FramingError, `non-FramingError ${String(err)} on ${input.toString('hex')}`);
      }
    }
    console.log(`structural fuzz: ${berValid} sound BER, ${accepted.length} accepted by the schema`);
    assert.ok(berValid > 15_000, `sound BER ${berValid}`);
    assert.ok(accepted.length > 1000, `accepted ${accepted.length}`);
    await assertLdapjsTerminates(accepted, 60_000);
  });
});

/** A decoded BER element, for structure-aware mutation. */
interface Node {
  tag: number;
  children?: Node[];
  content?: Buffer;
}

function decodeTree(buf: Buffer): Node {
  const walk = (start: number, end: number): Node[] => {
    const out: Node[] = [];
    let p = start;
    while (p < end) {
      const tag = buf[p];
      const lb = buf[p + 1];
      let q = p + 2;
      let len = lb;
      if (lb & 0x80) {
        len = 0;
        for (let i = 0; i < (lb & 0x7f); i++) len = len * 256 + buf[q++];
      }
      out.push(tag & 0x20 ? { tag, children: walk(q, q + len) } : { tag, content: buf.subarray(q, q + len) });
      p = q + len;
    }
    return out;
  };
  return walk(0, buf.length)[0];
}

function encodeTree(n: Node): Buffer {
  return n.children ? tlv(n.tag, ...n.children.map(encodeTree)) : tlv(n.tag, n.content ?? Buffer.alloc(0));
}

function allNodes(n: Node, out: Node[] = []): Node[] {
  out.push(n);
  for (const c of n.children ?? []) allNodes(c, out);
  return out;
}

function replaceNode(target: Node, source: Node): void {
  delete target.children;
  delete target.content;
  Object.assign(target, source);
}

const TREE_TAGS = [
  0x01, 0x02, 0x04, 0x0a, 0x30, 0x31, 0x80, 0x81, 0x82, 0x83, 0x84, 0x87, 0x8a, 0x8b,
  0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa9, 0x42, 0x4a, 0x50, 0x60, 0x63, 0x66, 0x68, 0x77,
];
const NASTY_CONTENT = [
  [0x04, 0x7f], [0x30, 0x7f], [0x30, 0x84, 0xff, 0xff, 0xff, 0xff], [0xa0, 0x05, 0x04], [0x30, 0x00, 0xa0, 0x02, 0x04, 0x7f], [],
];

/**
 * 20,000 LDAPMessages mutated structurally: subtrees replaced, deleted,
 * duplicated, swapped between messages, constructed elements turned
 * primitive (their children becoming opaque contents) and back. Every output
 * is sound BER, so these probe the schema layer rather than the BER walk.
 */
function structuralFuzzInputs(count: number, seed: number): Buffer[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const samples = sampleMessages();
  const randomTree = (depth: number): Node => {
    const tag = pick(TREE_TAGS);
    if (tag & 0x20 && depth < 5) {
      const k = Math.floor(rnd() * 4);
      return { tag, children: Array.from({ length: k }, () => randomTree(depth + 1)) };
    }
    if (tag & 0x20) return { tag, children: [] };
    const content =
      rnd() < 0.3
        ? Buffer.from(pick(NASTY_CONTENT))
        : Buffer.from(Array.from({ length: Math.floor(rnd() * 5) }, () => Math.floor(rnd() * 256)));
    return { tag, content };
  };
  const inputs: Buffer[] = [];
  for (let n = 0; n < count; n++) {
    const tree = decodeTree(pick(samples));
    const edits = 1 + Math.floor(rnd() * 3);
    for (let e = 0; e < edits; e++) {
      const nodes = allNodes(tree).slice(1);
      if (nodes.length === 0) break;
      const target = pick(nodes);
      const r = rnd();
      if (r < 0.25) {
        replaceNode(target, randomTree(3));
      } else if (r < 0.45 && target.children) {
        // Constructed → primitive with the old children as opaque bytes (tag bit cleared).
        const bytes = Buffer.concat(target.children.map(encodeTree));
        target.tag &= ~0x20;
        delete target.children;
        target.content = rnd() < 0.5 ? bytes : Buffer.concat([bytes, Buffer.from(pick(NASTY_CONTENT))]);
      } else if (r < 0.55 && target.content && target.content.length > 1 && (target.tag & 0x1f) !== 0x1f) {
        // Primitive → constructed, if its contents happen to parse.
        try {
          validateBer(Buffer.concat([Buffer.from([0x30]), berLength(target.content.length), target.content]), 8);
          target.children = decodeTree(tlv(0x30, target.content)).children;
          target.tag |= 0x20;
          delete target.content;
        } catch {
          /* not BER inside: leave it */
        }
      } else if (r < 0.7) {
        const parent = allNodes(tree).find((x) => x.children?.includes(target));
        if (parent?.children) {
          const i = parent.children.indexOf(target);
          if (rnd() < 0.5) parent.children.splice(i, 1);
          else parent.children.splice(i, 0, structuredClone(target));
        }
      } else if (r < 0.85) {
        replaceNode(target, structuredClone(pick(allNodes(decodeTree(pick(samples))))));
      } else if (target.children) {
        target.children.push(randomTree(4));
      } else {
        target.tag = pick(TREE_TAGS) & ~0x20;
      }
    }
    inputs.push(encodeTree(tree));
  }
  return inputs;
}

async function assertLdapjsTerminates(pdus: Buffer[], timeoutMs: number): Promise<void> {
  const progress = new SharedArrayBuffer(4);
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { LdapMessage } = require(workerData.messages);
    const { BerReader } = require(workerData.asn1);
    const progress = new Int32Array(workerData.progress);
    let threw = 0;
    workerData.pdus.forEach((u8, i) => {
      Atomics.store(progress, 0, i);
      try { LdapMessage.parse(new BerReader(Buffer.from(u8))); } catch { threw++; }
    });
    parentPort.postMessage({ threw });
  `;
  const worker = new Worker(code, {
    eval: true,
    workerData: {
      messages: require.resolve('@ldapjs/messages'),
      asn1: require.resolve('@ldapjs/asn1'),
      progress,
      pdus: pdus.map((b) => new Uint8Array(b)),
    },
  });
  const outcome = await new Promise<{ threw: number } | 'timeout' | Error>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    worker.once('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    worker.once('error', (e) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
  await worker.terminate();
  if (outcome === 'timeout') {
    const i = new Int32Array(progress)[0];
    assert.fail(`ldapjs hung on a PDU the framer accepted: ${pdus[i].toString('hex')}`);
  }
  if (outcome instanceof Error) throw outcome;
}

// ---------------------------------------------------------------------------

describe('noticeOfDisconnection', () => {
  test('decodes with BerReader to the fields given (RFC 4511 §4.4.1)', () => {
    const buf = noticeOfDisconnection(2, 'malformed PDU');
    const ber = new BerReader(buf);
    assert.equal(ber.readSequence(), 0x30);
    assert.equal(ber.readInt(), 0); // messageID 0: unsolicited notification
    assert.equal(ber.readSequence(0x78), 0x78); // ExtendedResponse [APPLICATION 24]
    assert.equal(ber.readEnumeration(), 2); // protocolError
    assert.equal(ber.readString(), ''); // matchedDN
    assert.equal(ber.readString(), 'malformed PDU'); // diagnosticMessage
    assert.equal(ber.readString(0x8a), NOTICE_OF_DISCONNECTION_OID); // responseName [10]
    assert.equal(ber.offset, buf.length); // no responseValue
    assert.equal(NOTICE_OF_DISCONNECTION_OID, '1.3.6.1.4.1.1466.20036');
  });

  test('other codes, long UTF-8 messages, and ldapjs agrees', () => {
    const text = 'Störung — '.repeat(40); // > 255 bytes: multi-octet lengths
    for (const code of [2, 8, 52, 200, 0x7fffffff]) {
      const buf = noticeOfDisconnection(code, text);
      assert.doesNotThrow(() => validateLdapMessage(buf, 8));
      const msg = parseLdap(buf);
      assert.equal(msg.type, 'ExtensionResponse');
      assert.equal(msg.messageId, 0);
      assert.equal(msg.status, code);
      assert.equal(msg.diagnosticMessage, text);
      assert.equal(msg.responseName, NOTICE_OF_DISCONNECTION_OID);
    }
  });

  test('refuses codes outside 0..2^31-1', () => {
    assert.throws(() => noticeOfDisconnection(-1, 'x'), RangeError);
    assert.throws(() => noticeOfDisconnection(1.5, 'x'), RangeError);
    assert.throws(() => noticeOfDisconnection(2 ** 31, 'x'), RangeError);
  });
});
