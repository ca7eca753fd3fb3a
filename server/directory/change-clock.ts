/**
 * The change clock: the number of the last change committed to the
 * directory, published by the one writer in a SharedArrayBuffer that every
 * thread of the process can read with one atomic load.
 *
 * The contract:
 * - The writer publishes the last committed change number AFTER the commit
 *   and BEFORE the write's promise resolves (Directory's write path does it,
 *   and so does the writer's watch of other processes' commits, writes.ts),
 *   so a client's next request, on whatever thread, finds the clock at or
 *   past its write.
 * - A reader compares `current()` with the change number its views have
 *   followed (Directory.sync): equal, nothing to do and no SQL; behind, it
 *   reads the change log from its position before it answers.
 * - The value only ever grows (`publish` of a smaller number is ignored).
 *   Change numbers are SQLite rowids below 2^53: stored as a BigInt64.
 *
 * Give a serving thread the writer's `buffer` (workerData or postMessage
 * shares it, not a copy) and wrap it: `new ChangeClock(buffer)`.
 */
/** ES2024's Atomics.waitAsync (Node.js 16 and later), which the ES2023 library of tsconfig.json does not declare. */
interface AtomicsWaitAsync {
  waitAsync(array: BigInt64Array, index: number, value: bigint): { async: false; value: string } | { async: true; value: Promise<string> };
}

export class ChangeClock {
  /** The shared memory: 8 bytes, one signed 64-bit integer. */
  readonly buffer: SharedArrayBuffer;
  private readonly cell: BigInt64Array;

  /** A clock over `buffer` (another thread's), or over a new buffer at 0. */
  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT);
    if (this.buffer.byteLength < BigInt64Array.BYTES_PER_ELEMENT) throw new RangeError('a change clock needs a SharedArrayBuffer of 8 bytes');
    this.cell = new BigInt64Array(this.buffer, 0, 1);
  }

  /** The last change number published (0 before the first). One atomic load. */
  current(): number {
    return Number(Atomics.load(this.cell, 0));
  }

  /**
   * Publishes `changeNumber` as committed, when it is past the current value
   * (a smaller or equal one is ignored), and wakes `reached` waiters on
   * every thread.
   */
  publish(changeNumber: number): void {
    if (!Number.isSafeInteger(changeNumber) || changeNumber < 0) throw new RangeError(`not a change number: ${changeNumber}`);
    const next = BigInt(changeNumber);
    for (;;) {
      const cur = Atomics.load(this.cell, 0);
      if (cur >= next) return;
      if (Atomics.compareExchange(this.cell, 0, cur, next) === cur) break;
    }
    Atomics.notify(this.cell, 0);
  }

  /**
   * Resolves once the clock is at `changeNumber` or past it (at once when it
   * is already), whichever thread publishes it: for tests and for a thread
   * that must not answer before a change is published. Never blocks the
   * event loop (Atomics.waitAsync).
   */
  async reached(changeNumber: number): Promise<void> {
    for (;;) {
      const cur = Atomics.load(this.cell, 0);
      if (Number(cur) >= changeNumber) return;
      const w = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.cell, 0, cur);
      if (w.async) await w.value;
    }
  }
}
