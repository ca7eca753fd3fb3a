/**
 * The guessing throttle, one for every door that checks a password (LDAP
 * simple bind and Password Modify's oldPasswd, SMTP AUTH).
 *
 * Failures are counted per account (the entry's normalised DN, or the name
 * given when there is none) and per client address (IPv4, or the IPv6 /64),
 * over a sliding window:
 * - the reply to a failure waits a growing delay: none for the first
 *   FREE_FAILURES, then `delayMs`, doubling up to `maxDelayMs`, by the larger
 *   of the two counts (a correct password is never delayed);
 * - once an account has `accountFailures`, or a client `clientFailures`,
 *   failures within the window, their attempts are refused without checking
 *   any password (TooManyFailuresError) until failures age out of the window;
 *   refused attempts do not count, so the refusal always ends;
 * - a success clears its account's failures (not its client's: one valid
 *   account must not buy a client more guesses at others);
 * - attempts still being checked count as failures, so parallel connections
 *   cannot all slip under the limit at once.
 * State is in memory, bounded (least recently used keys are forgotten first),
 * one per process: serving threads ask the main thread's (Throttle).
 */
import { clientKey } from '../net';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { TooManyFailuresError } from './errors';
import { lazily } from '../lazy';

/** The throttle's settings (DCMX_AUTH_*). */
export interface ThrottleOptions {
  /** How long a failure counts, ms. */
  windowMs: number;
  /** Failures of one account within the window after which it is refused. */
  accountFailures: number;
  /** Failures from one client address within the window after which it is refused. */
  clientFailures: number;
  /** First delay of a failure's reply, ms (0: no delays). */
  delayMs: number;
  /** Longest delay, ms. */
  maxDelayMs: number;
}

/** Production defaults: 10 failures per account and 50 per client in 15 minutes; delays from 0.5 s to 8 s. */
export const DEFAULT_THROTTLE: Readonly<ThrottleOptions> = Object.freeze({
  windowMs: 15 * 60 * 1000,
  accountFailures: 10,
  clientFailures: 50,
  delayMs: 500,
  maxDelayMs: 8000,
});

/** Failures answered without delay (a typo or two). */
export const FREE_FAILURES = 2;

/** Keys remembered at most. */
const MAX_KEYS = 100_000;

/** One attempt under way: end it with exactly one of its methods. */
export interface AuthAttempt {
  /** The password was right: clears the account's failures. */
  succeeded(): void;
  /** The password was wrong: counts the failure and resolves after the delay it earns. */
  failed(): Promise<void>;
}

/**
 * The throttle as the doors use it, wherever its counts are kept: in this
 * thread (AuthThrottle), or in the main thread for every serving thread of
 * the process (server/threads/process-state.ts), so that N threads do not
 * give an attacker N times the guesses; hence `begin` may answer later.
 */
export interface Throttle {
  /** Begins an attempt; rejects (or throws) TooManyFailuresError while the client or the account is refused. */
  begin(client: string, account: string): AuthAttempt | Promise<AuthAttempt>;
  /** For tests and monitoring: attempts refused, failures delayed (as this thread saw them). */
  readonly stats: { refused: number; delayed: number };
}

interface Counter {
  /** Times of the failures still in the window, oldest first. */
  failures: number[];
  /** Attempts begun and not ended. */
  pending: number;
}

/** Counts failures and decides delays and refusals (see the module comment). */
export class AuthThrottle implements Throttle {
  /**
   * Counters by key, made at the first attempt: an LRUCache allocates its
   * slots for MAX_KEYS up front (~3 MiB), which an appliance nobody binds
   * to (DNS only) need not hold.
   */
  private readonly counters = lazily(() => new LRUCache<string, Counter>({ max: MAX_KEYS }));
  /** For tests and monitoring: attempts refused, failures delayed. */
  readonly stats = { refused: 0, delayed: 0 };

  constructor(readonly options: Readonly<ThrottleOptions> = DEFAULT_THROTTLE) {
  }

  /** Failures of `key` still in the window, plus its attempts under way. */
  private count(key: string, now: number): number {
    const c = this.counters().get(key);
    if (!c) return 0;
    while (c.failures.length && c.failures[0] <= now - this.options.windowMs) c.failures.shift();
    return c.failures.length + c.pending;
  }

  private counter(key: string): Counter {
    let c = this.counters().get(key);
    if (!c) {
      c = { failures: [], pending: 0 };
      this.counters().set(key, c);
    }
    return c;
  }

  /**
   * Begins an attempt on `account` from `client`; throws TooManyFailuresError
   * (nothing is checked) while either is refused.
   */
  begin(client: string, account: string): AuthAttempt {
    const now = performance.now();
    const keys = [`c ${clientKey(client)}`, `a ${account}`];
    if (this.count(keys[0], now) >= this.options.clientFailures || this.count(keys[1], now) >= this.options.accountFailures) {
      this.stats.refused++;
      throw new TooManyFailuresError();
    }
    const [byClient, byAccount] = keys.map((k) => this.counter(k));
    byClient.pending++;
    byAccount.pending++;
    let ended = false;
    const end = () => {
      if (ended) return false;
      ended = true;
      byClient.pending--;
      byAccount.pending--;
      return true;
    };
    return {
      succeeded: () => {
        if (end()) byAccount.failures = [];
      },
      failed: async () => {
        if (!end()) return;
        const at = performance.now();
        for (const c of [byClient, byAccount]) c.failures.push(at);
        // Counters forgotten meanwhile are counted again from here.
        for (let i = 0; i < keys.length; i++) if (!this.counters().has(keys[i])) this.counters().set(keys[i], [byClient, byAccount][i]);
        const n = Math.max(this.count(keys[0], at), this.count(keys[1], at));
        const wait = this.delay(n);
        if (wait > 0) {
          this.stats.delayed++;
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      },
    };
  }

  /** The delay earned by the n-th failure in the window. */
  delay(n: number): number {
    const { delayMs, maxDelayMs } = this.options;
    if (n <= FREE_FAILURES || delayMs === 0) return 0;
    return Math.min(maxDelayMs, delayMs * 2 ** Math.min(30, n - FREE_FAILURES - 1));
  }
}
