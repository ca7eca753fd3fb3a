/**
 * The admin HTTP endpoint: read-only status for operators and probes.
 * GET /health → {"status":"ok","lastChangeNumber":N}.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Directory } from '../directory/directory';
import type { Logger } from '../log';

export interface HttpEndpoint {
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(directory: Directory, opts: { host: string; port: number }, log: Logger): Promise<HttpEndpoint> {
  const server = http.createServer((req, res) => {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    try {
      if (req.method === 'GET' && req.url === '/health') {
        send(200, { status: 'ok', lastChangeNumber: directory.changeRange().last });
      } else {
        send(404, { error: 'not found' });
      }
    } catch (err) {
      log.error({ err }, 'http request failed');
      send(500, { error: 'internal error' });
    }
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
