/**
 * `npm start`: runs the appliance in the foreground — or, with DCMX_ROLE=mta,
 * a remote transfer unit (remote-unit.ts). Prints one line with `dcmx ready`
 * and the bound ports when every listener is up, tells pm2 with
 * process.send('ready'), and shuts down cleanly on SIGINT/SIGTERM (or pm2's
 * `shutdown` message, shutdown_with_message): listeners closed first, open
 * sessions finished (SMTP and LDAP each within a few seconds), delivery
 * stopped, the store closed, the data dir let go for the next appliance
 * (succession.ts).
 */
import './runtime'; // first: an older Node.js stops here, before any native addon loads
import { ConfigError, loadConfig } from './config';
import { createLogger } from './log';
import { startAppliance } from './appliance';
import { startRemoteUnit } from './remote-unit';

/**
 * Start-up failures are one line on stderr: a bad setting (ConfigError, also
 * a port in use or a data dir that cannot be written) exits 2 with the
 * variable's name; anything else exits 1.
 */
function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    console.error(`dcmx: bad configuration: ${err.message}`);
    process.exit(2);
  }
  console.error('dcmx: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
}

async function main(): Promise<void> {
  // File I/O (spool, Maildir, fsync) runs on libuv's thread pool; 4 threads
  // queue fsyncs behind each other under concurrent SMTP sessions. The pool
  // is created on first use, which is after this line.
  process.env.UV_THREADPOOL_SIZE ??= '16';
  // The store holds password hashes, the spool and Maildirs mail, data/tls a key:
  // whatever this process creates is its user's alone.
  process.umask(0o077);
  let config;
  let app;
  let log;
  try {
    config = loadConfig();
    log = createLogger(config.logLevel);
    app = config.role === 'mta' ? await startRemoteUnit(config, log) : await startAppliance(config, log);
  } catch (e) {
    fail(e);
  }
  let stopping = false;
  const stop = (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.close().then(
      () => process.exit(code),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('message', (msg) => {
    if (msg === 'shutdown') stop('shutdown message');
  });
  // A successor whose predecessor never ends is a second appliance on the data dir: it goes (succession.ts).
  if ('ownership' in app) {
    app.ownership.owned.catch((err: unknown) => {
      if (stopping) return;
      console.error(`dcmx: bad configuration: ${err instanceof Error ? err.message : String(err)}`);
      stop('data dir held by another appliance', 2);
    });
  }
  // Only now announce readiness: a supervisor may signal us the moment it reads the line.
  const p = app.ports;
  const https = p.https === undefined ? '' : ` https=${p.https}`;
  if ('ldap' in p) console.log(`dcmx ready ldap=${p.ldap} dns=${p.dns} smtp=${p.smtp} http=${p.http}${https} threads=${config.threads} listen=${config.listen} data=${config.dataDir}`);
  else console.log(`dcmx ready role=mta smtp=${p.smtp} http=${p.http}${https} directory=${config.directory!.url} listen=${config.listen} data=${config.dataDir}`);
  if (process.send) process.send('ready');
}

main().catch(fail);
