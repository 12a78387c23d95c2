// Faults the worker meets in production, injected on cue: a fault-injecting proxy between the
// worker and the deployment (connections closed without an answer, 5xx, slow answers) on each
// call of a task's life (claimWork, reclaimTask, createArtifact, finishArtifact,
// reportCompleted) and on the upload PUT (the embedded deployment signs its blob URLs for the
// proxy's address), and a full disk under the task log and during an artifact upload (a small
// tmpfs as the worker's temporary folder). For each: the claimed run is resolved exactly once,
// with the result the fault allows, and nothing is left behind (containers, journal entries,
// temporary files). The suite prints a table of fault x outcome (`make test-faults`; `make test`
// runs it too). The Docker engine's faults are in engine-faults.test.ts (a private engine).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { TestProxy } from '../support/fault-proxy.ts';
import { startWorkerBehind } from '../worker/test-proxy.ts';

const engine = testEngine();
const rows: string[] = [];

after(() => {
  // The fault x outcome table, for a person reading the test output.
  console.log(['', '| call | fault | outcome | runs | resolved by the worker | left behind |', '|---|---|---|---|---|---|', ...rows, ''].join('\n'));
});

type Fault = { kind: 'reset'; count: number } | { kind: 'status'; status: number; count: number } | { kind: 'delay'; ms: number; count: number };

interface Scenario {
  call: string;
  method: string;
  path: RegExp;
  fault: Fault;
  /** The claim timeout the scenario needs (reclaims happen only when the task outlives a claim). */
  claimTimeoutSeconds?: number;
  /** The run's resolution (`completed`, or `exception/internal-error` when the fault loses the claim). */
  expect: string;
}

const describeFault = (f: Fault) => f.kind === 'reset' ? `connection closed x${f.count}` : f.kind === 'status' ? `HTTP ${f.status} x${f.count}` : `${f.ms / 1000} s late x${f.count}`;

const transient: Fault[] = [{ kind: 'reset', count: 2 }, { kind: 'status', status: 503, count: 2 }, { kind: 'delay', ms: 2000, count: 1 }];
// 10 s claims reclaimed 4 s in (6 s margin): the worker gives up on a reclaim 3 s later.
const reclaim = { call: 'reclaimTask', method: 'POST', path: /\/runs\/0\/reclaim$/, claimTimeoutSeconds: 10 };
const calls: Omit<Scenario, 'fault' | 'expect'>[] = [
  { call: 'claimWork', method: 'POST', path: /\/api\/queue\/v1\/claim-work\// },
  reclaim,
  { call: 'createArtifact', method: 'POST', path: /\/runs\/0\/artifacts\/public%2Fout\.txt$/ },
  { call: 'finishArtifact', method: 'PUT', path: /\/runs\/0\/artifacts\/public%2Fout\.txt$/ },
  { call: 'reportCompleted', method: 'POST', path: /\/runs\/0\/completed$/ },
];
const scenarios: Scenario[] = [
  ...calls.flatMap((c) => transient.map((fault) => ({ ...c, fault, expect: 'completed' }))),
  // A reclaim answered after the claim ran out: the worker gives up in time and resolves the run
  // itself (never left to claim-expired), without the task's artifacts.
  { ...reclaim, fault: { kind: 'delay', ms: 8000, count: 1 }, expect: 'exception/internal-error' },
];

for (const s of scenarios) {
  test(`${s.call}, ${describeFault(s.fault)}: the run is resolved once (${s.expect}), nothing left behind`, async () => {
    const h = await WorkerHarness.start({
      noWorker: true, claimTimeoutSeconds: s.claimTimeoutSeconds,
      config: { 'task.reclaimMarginSeconds': s.claimTimeoutSeconds ? 6 : 60 },
    });
    const proxy = await TestProxy.start(h.rootUrl);
    try {
      if (s.fault.kind === 'reset') proxy.reset(s.method, s.path, s.fault.count);
      else if (s.fault.kind === 'status') proxy.answer(s.method, s.path, s.fault.status, s.fault.count);
      else proxy.delay(s.method, s.path, s.fault.ms, s.fault.count);
      await startWorkerBehind(h, proxy);
      const seconds = s.claimTimeoutSeconds ? Math.max(6, Math.ceil(1.5 * h.deployment.claimTimeoutSeconds)) : 0;
      const taskId = await h.submit({
        image: TASKENV_PASS, command: ['/bin/sh', '-c', `sleep ${seconds}; echo output > /tmp/out.txt; echo finished`], maxRunTime: 120,
        artifacts: { 'public/out.txt': { type: 'file', path: '/tmp/out.txt' } },
      });
      const status = await h.waitForResolution(taskId, 120_000);
      const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
      const leftovers = await leftoversAfterShutdown(h);
      const outcome = status.runs.map((r) => `${r.state}${r.reasonResolved && r.reasonResolved !== r.state ? `/${r.reasonResolved}` : ''}`).join(', ');
      rows.push(`| ${s.call} | ${describeFault(s.fault)} | ${outcome} | ${status.runs.length} | ${resolvedByWorker.join(', ') || 'no'} | ${leftovers.join(', ') || 'nothing'} |`);
      assert.ok(proxy.count(s.method, s.path) > 0, 'the faulty call was made');
      assert.equal(outcome, s.expect, `runs: ${JSON.stringify(status.runs)}`);
      assert.deepEqual(resolvedByWorker, [s.expect], 'resolved once, by the worker');
      if (s.expect === 'completed') {
        assert.equal((await h.artifact(taskId, 0, 'public/out.txt')).text, 'output\n');
        assert.match(await h.taskLog(taskId), /^finished\r?$/m);
      } else {
        assert.match(await h.taskLog(taskId), /Task has been aborted prematurely\. Reason: Could not reclaim task/);
      }
      assert.deepEqual(leftovers, []);
    } finally {
      await h.stop();
      await proxy.close();
    }
  });
}

// The upload PUT goes to storage, not to the queue: the embedded deployment is told to sign its
// blob URLs for the proxy's address (blobUrlBase), so the PUT passes the proxy while every queue
// call goes straight to the deployment. 4 MiB of random bytes, whose sha256 the task prints: the
// artifact must arrive whole, each retry re-reading it from the container.
const blobPut = /^\/_object\/blob\/[^?]*out\.bin\?/;
type PutFault = Fault | { kind: 'cut'; afterBytes: number; count: number };
const putScenarios: { fault: PutFault; expect: string; uploadRetries?: number }[] = [
  ...transient.map((fault) => ({ fault, expect: 'completed' })),
  { fault: { kind: 'cut', afterBytes: 1 << 20, count: 2 }, expect: 'completed' },
  // Every attempt refused: the retries run out and the run is the worker's problem.
  { fault: { kind: 'status', status: 503, count: Infinity }, uploadRetries: 2, expect: 'exception/internal-error' },
];
const describePutFault = (f: PutFault) => f.kind === 'cut' ? `connection closed after ${f.afterBytes >> 20} MiB of the body x${f.count}`
  : f.count === Infinity ? describeFault({ ...f }).replace(/xInfinity$/, 'every time') : describeFault(f);

for (const s of putScenarios) {
  test(`upload PUT, ${describePutFault(s.fault)}: the run is resolved once (${s.expect}), the artifact whole or absent, nothing left behind`, async () => {
    // The proxy's address goes into the deployment's URLs, so it listens first and learns its target after.
    const proxy = await TestProxy.start('http://127.0.0.1:9');
    const h = await WorkerHarness.start({ noWorker: true, blobUrlBase: proxy.url, config: s.uploadRetries !== undefined ? { 'artifacts.uploadRetries': s.uploadRetries } : {} });
    proxy.retarget(h.rootUrl);
    try {
      const f = s.fault;
      if (f.kind === 'reset') proxy.reset('PUT', blobPut, f.count);
      else if (f.kind === 'status') proxy.answer('PUT', blobPut, f.status, f.count);
      else if (f.kind === 'delay') proxy.delay('PUT', blobPut, f.ms, f.count);
      else proxy.cut('PUT', blobPut, f.afterBytes, f.count);
      await h.startWorker();
      const taskId = await h.submit({
        image: TASKENV_PASS, command: ['/bin/sh', '-c', 'head -c 4194304 /dev/urandom > /tmp/out.bin; sha256sum /tmp/out.bin; echo finished'], maxRunTime: 120,
        artifacts: { 'public/out.bin': { type: 'file', path: '/tmp/out.bin' } },
      });
      const status = await h.waitForResolution(taskId, 180_000);
      const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
      const leftovers = await leftoversAfterShutdown(h);
      const outcome = status.runs.map((r) => `${r.state}${r.reasonResolved && r.reasonResolved !== r.state ? `/${r.reasonResolved}` : ''}`).join(', ');
      const puts = proxy.count('PUT', blobPut);
      rows.push(`| upload PUT (${puts} sent) | ${describePutFault(s.fault)} | ${outcome} | ${status.runs.length} | ${resolvedByWorker.join(', ') || 'no'} | ${leftovers.join(', ') || 'nothing'} |`);
      const log = await h.taskLog(taskId);
      // A slow answer is waited for; every other fault makes the worker send the PUT again.
      if (s.fault.kind === 'delay') assert.equal(puts, 1);
      else assert.equal(puts, s.fault.count === Infinity ? 1 + s.uploadRetries! : s.fault.count + 1, `PUTs sent: ${puts}`);
      assert.equal(outcome, s.expect, log);
      assert.deepEqual(resolvedByWorker, [s.expect], 'resolved once, by the worker');
      const url = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, 'public/out.bin') as string;
      const res = await fetch(url);
      const body = Buffer.from(await res.arrayBuffer());
      if (s.expect === 'completed') {
        const printed = /^([0-9a-f]{64}) {2}\/tmp\/out\.bin\r?$/m.exec(log)?.[1];
        assert.ok(printed, log);
        assert.equal(body.length, 4 << 20);
        assert.equal(createHash('sha256').update(body).digest('hex'), printed, 'the artifact arrived whole');
      } else {
        assert.notEqual(res.status, 200, 'no artifact from a failed upload');
        assert.match(log, /Uploading artifact "public\/out\.bin" failed: .*503/);
      }
      assert.deepEqual(leftovers, []);
    } finally {
      await h.stop();
      await proxy.close();
    }
  });
}

const needsRoot = process.getuid?.() !== 0 && 'needs root to mount a small tmpfs';

/**
 * A worker whose temporary folder (task logs, artifact spools) is a tmpfs of `mib` MiB: only it
 * is small, the embedded deployment (under <stateDir>/embedded) and the run journal keep working.
 */
async function withSmallTmp(mib: number, config: Record<string, unknown>, body: (h: WorkerHarness) => Promise<void>): Promise<void> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'worker-full-disk-'));
  const tmp = path.join(stateDir, 'tmp');
  mkdirSync(tmp);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', tmp]);
  try {
    const h = await WorkerHarness.start({ stateDir, config });
    try {
      await body(h);
    } finally {
      await h.stop();
    }
  } finally {
    execFileSync('umount', [tmp]);
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** What a run left once its worker has shut down: containers, networks, volumes, journal entries, temporary files. */
async function leftoversAfterShutdown(h: WorkerHarness): Promise<string[]> {
  await h.worker?.shutdown('scenario over');
  h.worker = undefined;
  return [
    ...(await engine.listOwnedContainers(h.config.workerId)).map((c) => `container ${c.id.slice(0, 12)}`),
    ...(await engine.listOwnedNetworks(h.config.workerId)).map((n) => `network ${n.name}`),
    ...(await engine.listOwnedVolumes(h.config.workerId)).map((v) => `volume ${v.name}`),
    ...readdirSync(path.join(h.stateDir, 'runs')).map((f) => `journal ${f}`),
    ...readdirSync(path.join(h.stateDir, 'tmp')).map((f) => `tmp ${f}`),
  ];
}

test('a full disk under the task log: the run is resolved once as the worker\'s problem, with what log there is', { skip: needsRoot }, async () => {
  await withSmallTmp(4, { 'artifacts.uploadRetries': 0 }, async (h) => {
    // 16 MiB of output into a 4 MiB temporary folder.
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'i=0; while [ $i -lt 16 ]; do head -c 1048576 /dev/zero | tr "\\0" x; i=$((i+1)); done; echo; echo finished'], maxRunTime: 120 });
    const status = await h.waitForResolution(taskId, 120_000);
    const resolved = h.events('task resolved', taskId).map((e) => String(e.taskState));
    const incomplete = h.events('the task log is incomplete', taskId).length;
    const left = await leftoversAfterShutdown(h);
    rows.push(`| task log | disk full (4 MiB tmpfs under the task logs, 16 MiB of output) | ${status.runs.map((r) => `${r.state}/${r.reasonResolved}`).join(', ')} | ${status.runs.length} | ${resolved.join(', ')} | ${left.join(', ') || 'nothing'} |`);
    assert.deepEqual(status.runs.map((r) => `${r.state}/${r.reasonResolved}`), ['exception/internal-error']);
    assert.deepEqual(resolved, ['exception/internal-error']);
    assert.equal(incomplete, 1);
    assert.deepEqual(left, []);
  });
});

// An 8 MiB artifact through a 4 MiB temporary folder. s3 storage spools each artifact to disk
// first (to gzip it and re-send it on a retry): the disk fills during the upload. Object storage
// streams it from the container to the PUT: nothing is written, the disk does not matter.
const fullDiskUploads: { storageType: 'object' | 's3'; fault: string; expect: string }[] = [
  { storageType: 's3', fault: 'disk full (an 8 MiB artifact spooled into a 4 MiB tmpfs)', expect: 'exception/internal-error' },
  { storageType: 'object', fault: 'an 8 MiB artifact, a 4 MiB tmpfs (streamed, never on disk)', expect: 'completed' },
];
for (const s of fullDiskUploads) {
  test(`a full disk during an artifact upload (${s.storageType} storage): the run is resolved once (${s.expect})${s.expect === 'completed' ? ', the artifact whole' : ', with a line saying so'}`, { skip: needsRoot }, async () => {
    await withSmallTmp(4, { 'artifacts.storageType': s.storageType }, async (h) => {
      const taskId = await h.submit({
        image: TASKENV_PASS, command: ['/bin/sh', '-c', 'head -c 8388608 /dev/urandom > /tmp/out.bin; sha256sum /tmp/out.bin; echo finished'], maxRunTime: 120,
        artifacts: { 'public/out.bin': { type: 'file', path: '/tmp/out.bin' } },
      });
      const status = await h.waitForResolution(taskId, 120_000);
      const resolved = h.events('task resolved', taskId).map((e) => String(e.taskState));
      const left = await leftoversAfterShutdown(h);
      const outcome = status.runs.map((r) => `${r.state}${r.reasonResolved && r.reasonResolved !== r.state ? `/${r.reasonResolved}` : ''}`).join(', ');
      rows.push(`| artifact upload (${s.storageType} storage) | ${s.fault} | ${outcome} | ${status.runs.length} | ${resolved.join(', ')} | ${left.join(', ') || 'nothing'} |`);
      const log = await h.taskLog(taskId);
      assert.equal(outcome, s.expect, log);
      assert.deepEqual(resolved, [s.expect], 'resolved once, by the worker');
      assert.match(log, /^finished\r?$/m, 'the whole task log was uploaded');
      const url = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, 'public/out.bin') as string;
      const res = await fetch(url);
      const body = Buffer.from(await res.arrayBuffer());
      if (s.expect === 'completed') {
        const printed = /^([0-9a-f]{64}) {2}\/tmp\/out\.bin\r?$/m.exec(log)?.[1];
        assert.equal(createHash('sha256').update(body).digest('hex'), printed, 'the artifact arrived whole');
      } else {
        assert.notEqual(res.status, 200, 'no artifact from a failed upload');
        assert.match(log, /Uploading artifact "public\/out\.bin" failed: the worker's disk is full: no room left in .* \(ENOSPC: no space left on device/);
      }
      assert.deepEqual(left, []);
    });
  });
}
