/**
 * LineFolder (server/mta/fold.ts): lines over 998 octets get CRLF SPACE
 * inserted, as Postfix's smtp_line_length_limit does; shorter lines, CRLF or
 * bare LF, are untouched; a UTF-8 character is never split; the result does
 * not depend on how the input is chunked; nothing but a few octets is held.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { LineFolder, MAX_LINE } from '../../server/mta/fold';
import { prng } from '../prng';

/** Folds `input` pushed in chunks cut at `cuts`. */
function fold(input: Buffer, cuts: number[] = []): Buffer {
  const f = new LineFolder();
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts, input.length]) {
    out.push(Buffer.from(f.push(input.subarray(at, c))));
    at = c;
  }
  out.push(f.end());
  return Buffer.concat(out);
}

/** The lines of `b` without their line breaks (CRLF or LF). */
function lines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, at)) {
    out.push(b.subarray(at, i > at && b[i - 1] === 0x0d ? i - 1 : i));
    at = i + 1;
  }
  out.push(b.subarray(at));
  return out;
}

/** Undoes the folding: every inserted CRLF SPACE removed. */
function unfold(b: Buffer): string {
  return b.toString('latin1').replace(/\r\n /g, '');
}

test('lines of up to 998 octets are left exactly as they are, with CRLF, bare LF or no line break', () => {
  for (const n of [0, 1, 994, 995, 996, 997, 998]) {
    for (const eol of ['\r\n', '\n', '']) {
      const input = Buffer.from(`${'a'.repeat(n)}${eol}${eol ? 'next\r\n' : ''}`);
      assert.deepEqual(fold(input), input, `${n} octets + ${JSON.stringify(eol)}`);
    }
  }
  // A CR as the 999th octet before LF is the line's CRLF, not content.
  const crlf = Buffer.from(`${'c'.repeat(998)}\r\n`);
  for (let cut = 990; cut <= crlf.length; cut++) assert.deepEqual(fold(crlf, [cut]), crlf, `cut at ${cut}`);
});

test('a line of 999 octets and more is folded with CRLF SPACE, no line longer than 998', () => {
  assert.equal(fold(Buffer.from(`${'a'.repeat(999)}\r\n`)).toString(), `${'a'.repeat(998)}\r\n a\r\n`);
  assert.equal(fold(Buffer.from(`${'a'.repeat(998)}\rx\r\n`)).toString(), `${'a'.repeat(998)}\r\n \rx\r\n`, 'a CR not before LF is content');
  const long = Buffer.from('0123456789'.repeat(500_000)); // 5 MB, no line break at all
  const out = fold(long);
  for (const l of lines(out)) assert.ok(l.length <= MAX_LINE, `a line of ${l.length} octets`);
  assert.equal(unfold(out), long.toString('latin1'));
});

test('a UTF-8 character is never split by a fold', () => {
  for (const ch of ['é', '€', '𝄞']) {
    for (let pad = 0; pad < 4; pad++) {
      const input = Buffer.from(`${'a'.repeat(pad)}${ch.repeat(700)}\r\n`);
      const out = fold(input);
      for (const l of lines(out)) {
        assert.ok(l.length <= MAX_LINE, `${ch}: a line of ${l.length} octets`);
        const text = l.toString('utf8');
        assert.ok(!text.includes('\ufffd'), `${ch} split by a fold (pad ${pad})`);
      }
      assert.equal(unfold(out), input.toString('latin1'));
    }
  }
});

test('the result does not depend on the chunking, and only a few octets are ever held', () => {
  const rnd = prng(998);
  for (let round = 0; round < 200; round++) {
    const parts: string[] = [];
    for (let i = 0; i < 6; i++) {
      const len = [0, 500, 997, 998, 999, 1000, 2500][Math.floor(rnd() * 7)];
      parts.push('x'.repeat(len) + (rnd() < 0.3 ? 'é€' : '') + ['\r\n', '\n', '\r', ''][Math.floor(rnd() * 4)]);
    }
    const input = Buffer.from(parts.join(''));
    const whole = fold(input);
    const cuts = Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => Math.floor(rnd() * input.length)).sort((a, b) => a - b);
    assert.deepEqual(fold(input, cuts), whole, `round ${round}, cuts ${cuts}`);
  }
  const f = new LineFolder();
  const chunk = Buffer.alloc(1 << 20, 0x61);
  let out = 0;
  for (let i = 0; i < 4; i++) out += f.push(chunk).length;
  assert.ok(out >= 4 * chunk.length - 8, `only ${out} of ${4 * chunk.length} octets given out: the line is being buffered`);
});
