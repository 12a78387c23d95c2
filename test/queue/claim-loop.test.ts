// The claim loop against the embedded queue: it claims no more than its free slots, and
// stop() ends an idle loop at once — also when it comes while the claim gate is running,
// which once let a 20-second long poll start after stop().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import taskcluster from 'taskcluster-client';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { ClaimLoop } from '../../lib/queue/claim-loop.ts';
import { queueClient, type ClaimResponse } from '../../lib/queue/taskcluster.ts';
import winston from 'winston';
import Transport from 'winston-transport';

let d: EmbeddedDeployment;
let stateDir: string;
before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'claim-loop-'));
  d = await startEmbedded({ stateDir, port: 0, log: silentLog, claimWorkWaitSeconds: 20 });
});
after(async () => { await d.close(); rmSync(stateDir, { recursive: true, force: true }); });

function loop(taskQueueId: string, capacity: number, runTask: (c: ClaimResponse) => Promise<void>, gate?: () => Promise<string | undefined>,
  extra: Partial<ConstructorParameters<typeof ClaimLoop>[0]> = {}) {
  return new ClaimLoop({
    queue: queueClient(d, { keepAliveAgent: true, retries: 0 }), taskQueueId, workerGroup: 'g', workerId: 'w', capacity, log: silentLog,
    runTask, refuseTask: async () => {}, gate, ...extra,
  });
}

async function createTasks(taskQueueId: string, count: number): Promise<string[]> {
  const queue = new taskcluster.Queue({ rootUrl: d.rootUrl, credentials: d.credentials });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const taskId = taskcluster.slugid();
    ids.push(taskId);
    await queue.createTask(taskId, {
      taskQueueId, created: new Date().toISOString(), deadline: taskcluster.fromNow('1 hour').toISOString(),
      metadata: { name: 't', description: 't', owner: 'a@b.c', source: 'https://localhost/' }, payload: {},
    });
  }
  return ids;
}

class Capture extends Transport {
  readonly events: { message: string; [k: string]: unknown }[] = [];
  override log(info: { message: string }, next: () => void): void { this.events.push(info); next(); }
}

test('stop() during the claim gate does not start a long poll', async () => {
  let gateEntered!: () => void;
  const entered = new Promise<void>((r) => { gateEntered = r; });
  const l = loop('p/gate-stop', 1, async () => {}, async () => { gateEntered(); await sleep(200); return undefined; });
  l.start();
  await entered;
  const t0 = Date.now();
  await l.stop();
  assert.ok(Date.now() - t0 < 10_000, 'stop() did not wait out a 20 s long poll');
});

test('stop() during a long poll aborts it', async () => {
  const l = loop('p/poll-stop', 1, async () => {});
  l.start();
  await sleep(300);
  const t0 = Date.now();
  await l.stop();
  assert.ok(Date.now() - t0 < 10_000, 'stop() did not wait out a 20 s long poll');
});

test('never more running than capacity; every task is run once', async () => {
  const queue = new taskcluster.Queue({ rootUrl: d.rootUrl, credentials: d.credentials });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const taskId = taskcluster.slugid();
    ids.push(taskId);
    await queue.createTask(taskId, {
      taskQueueId: 'p/capacity', created: new Date().toISOString(), deadline: taskcluster.fromNow('1 hour').toISOString(),
      metadata: { name: 't', description: 't', owner: 'a@b.c', source: 'https://localhost/' }, payload: {},
    });
  }
  let running = 0; let most = 0; const seen: string[] = [];
  const l = loop('p/capacity', 2, async (claim) => {
    running++; most = Math.max(most, running); seen.push(claim.status.taskId);
    await sleep(150);
    await queueClient({ rootUrl: d.rootUrl, credentials: claim.credentials }).reportCompleted(claim.status.taskId, claim.runId);
    running--;
  });
  l.start();
  for (let i = 0; i < 100 && seen.length < 5; i++) await sleep(50);
  await l.stop();
  await l.drained();
  assert.equal(most, 2);
  assert.deepEqual([...seen].sort(), [...ids].sort());
});

test('a run that throws is logged and handed to runFailed, and the loop goes on claiming', async () => {
  const [first, second] = await createTasks('p/throws', 2);
  const capture = new Capture();
  const log = winston.createLogger({ level: 'debug', transports: [capture] });
  const failed: string[] = [];
  const ran: string[] = [];
  const l = loop('p/throws', 1, async (claim) => {
    ran.push(claim.status.taskId);
    if (claim.status.taskId === first) throw new Error('unexpected bug');
    await queueClient({ rootUrl: d.rootUrl, credentials: claim.credentials }).reportCompleted(claim.status.taskId, claim.runId);
  }, undefined, {
    log,
    runFailed: async (claim) => {
      failed.push(claim.status.taskId);
      await queueClient({ rootUrl: d.rootUrl, credentials: claim.credentials }).reportException(claim.status.taskId, claim.runId, { reason: 'internal-error' });
    },
  });
  l.start();
  for (let i = 0; i < 200 && ran.length < 2; i++) await sleep(50);
  await l.stop();
  await l.drained();
  assert.deepEqual(failed, [first]);
  assert.ok(ran.includes(second!), 'the loop claimed again after the failure');
  const event = capture.events.find((e) => e.message === 'task run failed');
  assert.equal(event?.taskId, first);
  assert.match(String(event?.error), /unexpected bug/);
  const queue = new taskcluster.Queue({ rootUrl: d.rootUrl, credentials: d.credentials });
  const { status } = await queue.status(first);
  assert.equal(status.runs[0].reasonResolved, 'internal-error', 'the claimed run was not left unresolved');
});

test('a claim gate that throws pauses claiming instead of ending the loop', async () => {
  const [taskId] = await createTasks('p/gate-throws', 1);
  const capture = new Capture();
  const log = winston.createLogger({ level: 'debug', transports: [capture] });
  let calls = 0;
  const ran: string[] = [];
  const l = loop('p/gate-throws', 1, async (claim) => {
    ran.push(claim.status.taskId);
    await queueClient({ rootUrl: d.rootUrl, credentials: claim.credentials }).reportCompleted(claim.status.taskId, claim.runId);
  }, async () => { calls++; if (calls === 1) throw new Error('disk check failed'); return undefined; }, { log });
  l.start();
  for (let i = 0; i < 200 && ran.length < 1; i++) await sleep(50);
  await l.stop();
  assert.deepEqual(ran, [taskId]);
  assert.ok(capture.events.some((e) => e.message === 'not claiming' && /the claim gate failed: disk check failed/.test(String(e.reason))));
});
