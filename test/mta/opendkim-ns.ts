/**
 * Run by dkim-fixture.ts opendkimVerify inside a user, mount and network
 * namespace of its own: listens on 127.0.0.1:53 (TCP; the namespace's
 * /etc/resolv.conf names it with `options use-vc`), carries each connection
 * over the Unix socket argv[2] to the test (which carries it on to our DNS
 * port), and runs `opendkim-testmsg` (Debian opendkim-tools) on the message
 * file argv[3]; exits with its status, its output passed on.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { execFile } from 'node:child_process';

/** In the namespace: 127.0.0.1:53 bridged to the Unix socket `sock`, then opendkim-testmsg < `msg`, its status ours. */
function inNamespace(sock: string, msg: string): void {
  const server = net.createServer((inner) => {
    const outer = net.connect(sock);
    inner.on('error', () => undefined);
    outer.on('error', () => inner.destroy());
    inner.pipe(outer).pipe(inner);
  });
  server.listen(53, '127.0.0.1', () => {
    const child = execFile('/usr/sbin/opendkim-testmsg', [], { timeout: 20_000 }, (err, stdout, stderr) => {
      process.stdout.write(stdout);
      process.stderr.write(stderr);
      process.exitCode = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      server.close();
      process.exit();
    });
    fs.createReadStream(msg).pipe(child.stdin!);
  });
}

if (require.main === module) inNamespace(process.argv[2], process.argv[3]);
