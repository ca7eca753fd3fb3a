/**
 * CI only (.ci/run): a whole corpus of DNS packets, one UDP payload per
 * *.pkt file in the directory DCMX_DNS_CORPUS (the Knot DNS fuzzing seed
 * corpus in CI), first through the server's door in process (as is,
 * mutated, bytes flipped), then replayed against a running appliance over
 * UDP and TCP. Fails on a crash (the appliance's process ends), a hang (a
 * probe after a packet goes unanswered: replay.ts) or a bad reply (judge()).
 * Not a *.test.ts file, so `npm test` never runs it: a fresh clone passes on
 * its own packets (packets/). Run it with
 *   DCMX_DNS_CORPUS=<dir> node --test dist/test/dns/corpus-replay.js
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ldapaddAt, startSpawned, stopChild, tempDirs, type SpawnedAppliance } from '../helpers';
import { digRunner, exampleOrgZone, packetFiles, Tally } from './fixture';
import { digChecks, judge, MAX_UDP, replayTcp, replayUdp } from './replay';
import { exerciseAll, exerciseFlipped } from './screening';

const DIR = process.env.DCMX_DNS_CORPUS ?? '';
const newDir = tempDirs('dcmx-corpus-replay-');
let corpus: Buffer[] = [];
let files: string[] = [];
let a: SpawnedAppliance | undefined;

/** A problem judge() reported for packet #i, with the packet's file name. */
const named = (problem: string): string => problem.replace(/#(\d+)/, (_, i: string) => files[Number(i)] ?? `#${i}`);

before(() => {
  assert.ok(DIR, 'set DCMX_DNS_CORPUS to a directory of *.pkt files (one DNS message each)');
  assert.ok(fs.existsSync(DIR), `DCMX_DNS_CORPUS: no directory ${DIR}`);
  files = packetFiles(DIR);
  assert.ok(files.length > 0, `no *.pkt file in ${DIR}`);
  corpus = files.map((f) => fs.readFileSync(path.join(DIR, f)));
});

after(async () => {
  if (a) await stopChild(a.child);
});

test('every packet, as is and mutated, passes the door in process without throwing or hanging', () => {
  const t = { asIs: new Tally(), newId: new Tally(), asQuery: new Tally(), truncated: new Tally() };
  exerciseAll(corpus, t);
  console.log(`${DIR}: ${corpus.length} packets\n  as is: ${t.asIs}\n  id changed: ${t.newId}\n  as a QUERY: ${t.asQuery}\n  truncated (x3): ${t.truncated}`);
  const flipped = new Tally();
  exerciseFlipped(corpus, 50_000, flipped);
  console.log(`  flipped (50,000): ${flipped}`);
});

test('every packet against a running appliance, over UDP and TCP: no crash, no hang, no bad reply', async () => {
  a = await startSpawned(newDir());
  const port = a.ports.dns;
  const r = await ldapaddAt(a.ports.ldap, exampleOrgZone({ spf: false }));
  assert.equal(r.code, 0, r.stderr);
  const dig = digRunner(port, 10_000);
  await digChecks(dig, 'zone loaded');
  const alive = (label: string) => assert.ok(a!.child.exitCode === null && a!.child.signalCode === null, `${label}: the appliance died:\n${a!.output().slice(-3000)}`);

  const udp = await replayUdp(port, corpus, 50);
  const u = judge('udp', corpus, udp);
  console.log(`UDP: ${u.tally}`);
  alive('udp');
  assert.equal(u.tally.get('unsendable'), corpus.filter((p) => p.length > MAX_UDP).length);
  assert.deepEqual(u.problems.map(named), []);

  const tcp = await replayTcp(port, corpus, 40, 8);
  const t = judge('tcp', corpus, tcp);
  console.log(`TCP: ${t.tally}`);
  alive('tcp');
  assert.deepEqual(t.problems.map(named), []);

  await digChecks(dig, 'after the corpus');
  alive('after the corpus');
});
