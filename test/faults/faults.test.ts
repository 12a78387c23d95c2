// Faults the worker meets in production, injected on cue: a fault-injecting proxy between the
// worker and the deployment (connections closed without an answer, 5xx, slow answers) on each
// call of a task's life (claimWork, reclaimTask, createArtifact, finishArtifact,
// reportCompleted), and a full disk under the task log (a small tmpfs as the state directory).
// For each: the claimed run is resolved exactly once, with the result the fault allows, and
// nothing is left behind (containers, journal entries, temporary files). The suite prints a
// table of fault x outcome (`make test-faults`; `make test` runs it too).
//
// Not here, and why: restarting the Docker engine under running tasks and taking its socket away
// at start would break every other test and session sharing this machine's engine; the upload PUT
// goes to storage directly, not through the proxy (its retries are tested in
// test/artifacts/collect-retry.test.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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
      await h.worker!.shutdown('scenario over');
      h.worker = undefined;
      const resolvedByWorker = h.events('task resolved', taskId).map((e) => String(e.taskState));
      const leftovers = [
        ...(await engine.listOwnedContainers(h.config.workerId)).map((c) => `container ${c.id.slice(0, 12)}`),
        ...readdirSync(path.join(h.stateDir, 'runs')).map((f) => `journal ${f}`),
        ...readdirSync(path.join(h.stateDir, 'tmp')).map((f) => `tmp ${f}`),
      ];
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

test('a full disk under the task log: the run is resolved once as the worker\'s problem, with what log there is', { skip: process.getuid?.() !== 0 && 'needs root to mount a small tmpfs' }, async () => {
  // Only the worker's temporary folder (task logs, artifact spools) is small: the embedded
  // deployment (under <stateDir>/embedded) keeps working.
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'worker-full-disk-'));
  const tmp = path.join(stateDir, 'tmp');
  mkdirSync(tmp);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', tmp]);
  try {
    const h = await WorkerHarness.start({ stateDir, config: { 'artifacts.uploadRetries': 0 } });
    try {
      // 16 MiB of output into a 4 MiB state directory.
      const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'i=0; while [ $i -lt 16 ]; do head -c 1048576 /dev/zero | tr "\\0" x; i=$((i+1)); done; echo; echo finished'], maxRunTime: 120 });
      const status = await h.waitForResolution(taskId, 120_000);
      const resolved = h.events('task resolved', taskId).map((e) => String(e.taskState));
      rows.push(`| task log | disk full (4 MiB tmpfs under the task logs, 16 MiB of output) | ${status.runs.map((r) => `${r.state}/${r.reasonResolved}`).join(', ')} | ${status.runs.length} | ${resolved.join(', ')} | ${(await engine.listOwnedContainers(h.config.workerId)).length ? 'a container' : 'nothing'} |`);
      assert.deepEqual(status.runs.map((r) => `${r.state}/${r.reasonResolved}`), ['exception/internal-error']);
      assert.deepEqual(resolved, ['exception/internal-error']);
      assert.ok(h.events('the task log is incomplete', taskId).length === 1);
      assert.deepEqual(await engine.listOwnedContainers(h.config.workerId), []);
    } finally {
      await h.stop();
    }
  } finally {
    execFileSync('umount', [tmp]);
    rmSync(stateDir, { recursive: true, force: true });
  }
});
