/**
 * The LDAP load generator: pipelined adds and closed-loop equality searches
 * over {@link WireConn}s. Measures wall time, this process's CPU time and
 * (given its pid) the server's CPU time over the measured window.
 */
import { cpuWindow, type CpuWindow } from './proc';
import { addRequestOp, EqualitySearchEncoder, message, OP, resultText, WireConn } from './wire';
import type { Phase } from './dit';

/** Result codes seen and the first few diagnostics of failures. */
export class Errors {
  readonly byCode = new Map<number, number>();
  readonly samples: string[] = [];
  total = 0;

  add(code: number, text: string): void {
    this.total++;
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
    if (this.samples.length < 5) this.samples.push(`resultCode ${code}: ${text}`);
  }

  merge(o: Errors): void {
    for (const [c, n] of o.byCode) this.byCode.set(c, (this.byCode.get(c) ?? 0) + n);
    this.total += o.total;
    for (const s of o.samples) if (this.samples.length < 5) this.samples.push(s);
  }

  toString(): string {
    return [...this.byCode].map(([c, n]) => `${n}x rc=${c}`).join(', ');
  }
}

/** Opens `n` connections, each bound as `dn`. */
export async function connectAll(port: number, n: number, dn: string, password: string): Promise<WireConn[]> {
  const conns = await Promise.all(Array.from({ length: n }, () => WireConn.connect(port)));
  // Bind one at a time: a server hashing passwords answers binds serially anyway.
  for (const c of conns) await c.bind(dn, password);
  return conns;
}

export interface AddResult extends CpuWindow {
  adds: number;
  errors: Errors;
  phases: { name: string; count: number; seconds: number }[];
}

/**
 * Runs the load phases in order, each as pipelined AddRequests spread over
 * `conns` with up to `depth` outstanding per connection. A phase starts
 * only when the previous one has been fully acknowledged (parents first).
 */
export async function pipelinedAdds(conns: WireConn[], phases: Phase[], depth: number, serverPid?: number): Promise<AddResult> {
  const errors = new Errors();
  const done: AddResult['phases'] = [];
  const win = cpuWindow(serverPid);
  let adds = 0;
  for (const phase of phases) {
    const t0 = performance.now();
    let next = 0;
    let acked = 0;
    await new Promise<void>((resolve, reject) => {
      if (phase.count === 0) return resolve();
      const pump = (c: WireConn, st: { msgId: number; out: number }) => {
        if (next >= phase.count) return;
        c.sock.cork();
        while (st.out < depth && next < phase.count) {
          c.write(message(++st.msgId, addRequestOp(phase.entry(next++))));
          st.out++;
        }
        process.nextTick(() => c.sock.uncork());
      };
      for (const c of conns) {
        const st = { msgId: 1, out: 0 };
        c.onFailure(reject);
        c.handler = (_id, op, code, pdu, opOff, end) => {
          if (op !== OP.addResponse) {
            reject(new Error(`unexpected response 0x${op.toString(16)} to add: ${resultText(pdu, opOff, end)}`));
            return;
          }
          if (code !== 0) errors.add(code, resultText(pdu, opOff, end));
          st.out--;
          if (++acked === phase.count) resolve();
          else pump(c, st);
        };
        pump(c, st);
      }
    });
    adds += phase.count;
    done.push({ name: phase.name, count: phase.count, seconds: (performance.now() - t0) / 1000 });
  }
  return { adds, errors, phases: done, ...win() };
}

export interface SearchOptions {
  base: string;
  attr: string;
  /** The values searched for, one picked at random per search. */
  values: string[];
  warmupSeconds: number;
  seconds: number;
  serverPid?: number;
}

export interface SearchResult extends CpuWindow {
  searches: number;
  entries: number;
  errors: Errors;
  latenciesMs: Float64Array;
}

/**
 * Closed loop: each connection keeps exactly one search outstanding and
 * sends the next as soon as SearchResultDone arrives. Searches that finish
 * during the warm-up are not counted. Resolves after the window, once every
 * connection's last search has completed.
 */
export async function searchLoad(conns: WireConn[], o: SearchOptions): Promise<SearchResult> {
  const enc = new EqualitySearchEncoder(o.base, o.attr);
  const values = o.values.map((v) => Buffer.from(v, 'utf8'));
  let lat = new Float64Array(1 << 18);
  let searches = 0;
  let entries = 0;
  const errors = new Errors();
  let measuring = false;
  let running = true;
  let win: (() => CpuWindow) | undefined;
  let window: CpuWindow | undefined;

  const finished = conns.map(
    (c) =>
      new Promise<void>((resolve, reject) => {
        let msgId = 1;
        let sent = 0;
        let got = 0;
        c.onFailure(reject);
        const send = () => {
          if (msgId >= 0x7ffffff0) msgId = 1;
          sent = performance.now();
          got = 0;
          c.write(enc.encode(++msgId, values[(Math.random() * values.length) | 0]));
        };
        c.handler = (id, op, code, pdu, opOff, end) => {
          if (op === OP.searchResultEntry) {
            got++;
            return;
          }
          if (op !== OP.searchResultDone) {
            if (op === OP.searchResultReference) return;
            reject(new Error(`unexpected response 0x${op.toString(16)}: ${resultText(pdu, opOff, end)}`));
            return;
          }
          if (id !== msgId) {
            reject(new Error(`SearchResultDone for message ${id}, expected ${msgId}`));
            return;
          }
          if (measuring) {
            if (searches === lat.length) {
              const bigger = new Float64Array(lat.length * 2);
              bigger.set(lat);
              lat = bigger;
            }
            lat[searches++] = performance.now() - sent;
            entries += got;
            if (code !== 0) errors.add(code, resultText(pdu, opOff, end));
          }
          if (running) send();
          else resolve();
        };
        send();
      }),
  );
  const timers: NodeJS.Timeout[] = [];
  const window$ = new Promise<void>((resolve) => {
    timers.push(
      setTimeout(() => {
        measuring = true;
        win = cpuWindow(o.serverPid);
        timers.push(
          setTimeout(() => {
            window = win!();
            measuring = false;
            running = false;
            resolve();
          }, o.seconds * 1000),
        );
      }, o.warmupSeconds * 1000),
    );
  });
  try {
    await Promise.all([window$, ...finished]);
  } finally {
    running = false;
    for (const t of timers) clearTimeout(t);
  }
  return { searches, entries, errors, latenciesMs: lat.subarray(0, searches), ...window! };
}

/** The p-th percentile (0..100) of `xs`, nearest rank. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[k];
}
