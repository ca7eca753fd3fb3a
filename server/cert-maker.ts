/**
 * The self-signed certificate maker, run by tls.ts in a worker thread of
 * its own on first boot: its libraries (selfsigned, @peculiar/x509, asn1js:
 * some 4 MiB of heap once loaded) go away with the worker instead of
 * staying in the appliance's heap for good (issue 14, memory).
 *
 * Input: workerData `{ hostname }`. Output: one message `{ cert, private }`
 * (PEM): a 2048-bit RSA key and a SHA-256 certificate for CN=hostname,
 * valid from now for ten years. A failure is the worker's error.
 */
import { parentPort, workerData } from 'node:worker_threads';

const selfsigned = require('selfsigned') as typeof import('selfsigned'); // eslint-disable-line @typescript-eslint/no-require-imports

async function make(hostname: string): Promise<void> {
  const now = new Date();
  const pems = await selfsigned.generate([{ name: 'commonName', value: hostname }], {
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + 10 * 365 * 86400_000),
    keySize: 2048,
    algorithm: 'sha256',
  });
  parentPort!.postMessage({ cert: pems.cert, private: pems.private });
}

void make((workerData as { hostname: string }).hostname);
