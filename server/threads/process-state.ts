/**
 * What must count once per process, not once per thread: the guessing
 * throttle (auth-throttle.ts) and the provisioning rate limits
 * (mta/provision-limits.ts). The main thread keeps them and serves them
 * over each thread's channel (serveProcessState); a serving thread's doors
 * use RemoteThrottle and RemoteLimits, which ask. So N threads do not give
 * an attacker N times the guesses, nor a flood N times the new domains.
 *
 * A throttled attempt is begun and ended on the main thread: its delay is
 * waited there, and an attempt under way counts (as a failure would) until
 * it ends. Attempts of a thread that dies before it ends them are ended as
 * failures (releaseAttempts), so a crash never clears a count.
 */
import { TooManyFailuresError } from '../directory/errors';
import type { AuthAttempt, Throttle } from '../directory/auth-throttle';
import type { ProvisionLimiter, ProvisionLimits, Reservation } from '../mta/provision-limits';
import type { Channel, Methods } from './channel';

/** The methods the main thread serves for the process's counts. */
export type StateMethods = {
  'throttle.begin': { args: { client: string; account: string }; result: number };
  'throttle.end': { args: { token: number; ok: boolean }; result: { delayed: boolean } };
  'limits.refusal': { args: { client: string }; result: string | null };
  'limits.reserve': { args: { client: string }; result: Reservation };
  'limits.forget': { args: { client: string; at: number }; result: null };
};

/** The main thread's side of one serving thread's channel: its attempts under way, to end if it dies. */
export interface StateService {
  /** Ends every attempt the thread began and did not end, as failures. */
  releaseAttempts(): void;
}

/**
 * Serves the process's throttle and provisioning limits on `channel` (the
 * main thread's end of one serving thread's channel).
 */
export function serveProcessState<M extends StateMethods>(channel: Channel<M, Methods>, throttle: Throttle, limits: ProvisionLimits): StateService {
  const attempts = new Map<number, AuthAttempt>();
  let next = 1;
  const ch = channel as unknown as Channel<StateMethods, Methods>;
  ch.handle('throttle.begin', async ({ client, account }) => {
    const attempt = await throttle.begin(client, account); // TooManyFailuresError crosses typed
    const token = next++;
    attempts.set(token, attempt);
    return token;
  });
  ch.handle('throttle.end', async ({ token, ok }) => {
    const attempt = attempts.get(token);
    if (!attempt) return { delayed: false };
    attempts.delete(token);
    if (ok) {
      attempt.succeeded();
      return { delayed: false };
    }
    const before = throttle.stats.delayed;
    await attempt.failed();
    return { delayed: throttle.stats.delayed > before };
  });
  ch.handle('limits.refusal', ({ client }) => limits.refusal(client) ?? null);
  ch.handle('limits.reserve', ({ client }) => limits.reserve(client));
  ch.handle('limits.forget', ({ client, at }) => {
    limits.forget(client, at);
    return null;
  });
  return {
    releaseAttempts() {
      for (const a of attempts.values()) void a.failed();
      attempts.clear();
    },
  };
}

/** A serving thread's view of the process's throttle: every attempt is begun and ended on the main thread. */
export class RemoteThrottle implements Throttle {
  readonly stats = { refused: 0, delayed: 0 };

  constructor(private readonly channel: Channel<Methods, StateMethods>) {}

  async begin(client: string, account: string): Promise<AuthAttempt> {
    let token: number;
    try {
      token = await this.channel.request('throttle.begin', { client, account });
    } catch (e) {
      if (e instanceof TooManyFailuresError) this.stats.refused++;
      throw e;
    }
    let ended = false;
    return {
      succeeded: () => {
        if (ended) return;
        ended = true;
        this.channel.notify('throttle.end', { token, ok: true });
      },
      failed: async () => {
        if (ended) return;
        ended = true;
        const { delayed } = await this.channel.request('throttle.end', { token, ok: false });
        if (delayed) this.stats.delayed++;
      },
    };
  }
}

/** A serving thread's view of the process's provisioning rate limits. */
export class RemoteLimits implements ProvisionLimiter {
  constructor(private readonly channel: Channel<Methods, StateMethods>) {}

  async refusal(client: string): Promise<string | undefined> {
    return (await this.channel.request('limits.refusal', { client })) ?? undefined;
  }

  reserve(client: string): Promise<Reservation> {
    return this.channel.request('limits.reserve', { client });
  }

  forget(client: string, at: number): void {
    this.channel.notify('limits.forget', { client, at });
  }
}
