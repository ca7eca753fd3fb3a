/**
 * The system's crypt(3) (libxcrypt), through our N-API binding in
 * native/xcrypt: the implementation slapd's {CRYPT} and Dovecot's *-CRYPT
 * schemes use. `npm ci` builds it (package.json postinstall).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What native/xcrypt/xcrypt.c exports. */
export interface Xcrypt {
  /** crypt_rn on the libuv thread pool; rejects for a setting libxcrypt refuses. A phrase with a NUL byte throws. */
  crypt(phrase: Buffer, setting: string): Promise<string>;
  /** crypt_gensalt_rn with random bytes from the operating system; throws for an unknown prefix or bad count. */
  gensalt(prefix: string, count: number): string;
  /** crypt_checksalt: 0 ok, 1 invalid, 2 disabled, 3 legacy, 4 too cheap. */
  checksalt(setting: string): number;
}

const ADDON = path.join('native', 'xcrypt', 'build', 'Release', 'xcrypt.node');
let loaded: Xcrypt | undefined;

/**
 * The binding, loaded on first use from the project folder (found upwards
 * from this file, so it works from the sources and from dist/). Throws with
 * the command to run when it has not been built.
 */
export function xcrypt(): Xcrypt {
  if (loaded) return loaded;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, ADDON);
    if (fs.existsSync(file)) {
      loaded = require(file) as Xcrypt; // eslint-disable-line @typescript-eslint/no-require-imports
      return loaded;
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`the crypt(3) binding ${ADDON} is not built: run \`npm ci\`, or \`node native/xcrypt/build.js\``);
}
