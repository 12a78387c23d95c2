// Soak with faults: one worker at capacity 4 runs mixed tasks (trivial, failing, artifacts,
// caches, maxRunTime exceeded, cancelled) while a fault-injecting proxy between it and the
// deployment (test/support/fault-proxy.ts) closes connections, answers 503 or answers late on a
// seeded random share of its claimWork, reclaimTask, createArtifact, finishArtifact and
// resolution reports. Every fault is injected before the request reaches the deployment, so no
// claim can be lost to a fault: each task must end with exactly the one run its kind calls for,
// resolved by the worker (never claim-expired). Counted before and after: the worker's
// containers, networks and volumes, its open file descriptors, files in <stateDir>/tmp and in the
// run journal, and its RSS (also a minute after the last task, against the idle RSS before).
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { seededRandom, TestProxy, type Fault } from '../test/support/fault-proxy.ts';
import type { BenchContext } from './lib/context.ts';
import { sleep } from './lib/context.ts';
import { interruptedKind, mixedTask, type MixedKind } from './lib/mixed-tasks.ts';
import { openFds, readMemory } from './lib/proc.ts';
import type { BenchmarkResult } from './lib/report.ts';
import { round } from './lib/stats.ts';
import { pool, submitTask } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';

const CAPACITY = 4;
/** Share of the faulted calls that get a fault. */
const FAULT_RATE = 0.1;
const SEED = Number(process.env.BENCH_SOAK_FAULTS_SEED ?? 17);
/** Claims of 10 s, reclaimed 4 s in: the maxRunTime and cancelled tasks outlive their first claim. */
const CLAIM_TIMEOUT_SECONDS = 10;

const FAULTED_CALLS: Array<{ label: string; method: string; path: RegExp }> = [
  { label: 'claimWork', method: 'POST', path: /\/claim-work\// },
  { label: 'reclaimTask', method: 'POST', path: /\/runs\/\d+\/reclaim$/ },
  { label: 'createArtifact', method: 'POST', path: /\/runs\/\d+\/artifacts\// },
  { label: 'finishArtifact', method: 'PUT', path: /\/runs\/\d+\/artifacts\// },
  { label: 'reportCompleted/Failed/Exception', method: 'POST', path: /\/runs\/\d+\/(completed|failed|exception)$/ },
];

/** A connection reset, a 503 or an answer 0.2-1.5 s late, equally likely. */
function drawFault(random: () => number): Fault {
  const r = random();
  if (r < 1 / 3) return { kind: 'reset' };
  if (r < 2 / 3) return { kind: 'answer', status: 503 };
  return { kind: 'delay', ms: Math.round(200 + random() * 1300) };
}

interface Counts { containers: number; networks: number; volumes: number; cacheInstances: number; fds: number; tmpFiles: number; journalFiles: number; rssMb: number }

async function countResources(engine: Dockerode, worker: WorkerProcess): Promise<Counts> {
  const label = [`taskcluster.worker-id=${worker.workerId}`];
  const [containers, networks, volumes] = await Promise.all([
    engine.listContainers({ all: true, filters: { label } }),
    engine.listNetworks({ filters: { label } }),
    engine.listVolumes({ filters: { label } }),
  ]);
  const files = (dir: string) => { try { return readdirSync(path.join(worker.stateDir, dir)).length; } catch { return 0; } };
  return {
    containers: containers.length, networks: networks.length, volumes: volumes.Volumes?.length ?? 0, cacheInstances: cacheInstances(path.join(worker.stateDir, 'caches')),
    fds: openFds(worker.pid), tmpFiles: files('tmp'), journalFiles: files('runs'), rssMb: round(readMemory(worker.pid)?.rssMb ?? Number.NaN, 0),
  };
}

/** Instance directories of the worker's caches (<stateDir>/caches/<cache>/<instance>). */
function cacheInstances(dir: string): number {
  let n = 0;
  try {
    for (const cache of readdirSync(dir, { withFileTypes: true })) {
      if (!cache.isDirectory() || cache.name.startsWith('.')) continue;
      n += readdirSync(path.join(dir, cache.name), { withFileTypes: true }).filter((e) => e.isDirectory()).length;
    }
  } catch { /* no caches yet */ }
  return n;
}

interface TaskRecord { taskId: string; kind: MixedKind; expect: string }

export async function soakFaults(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options, engine } = ctx;
  const total = options.soakFaultTasks;
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'bench-soak-faults-'));
  const configFile = path.join(stateDir, 'config.json');
  // Cancellation noticed within a second; reclaims 4 s into a 10 s claim.
  writeFileSync(configFile, JSON.stringify({ task: { cancelPollSeconds: 1, reclaimMarginSeconds: 6 } }));
  let proxy: TestProxy | undefined;
  const worker = await WorkerProcess.start({
    name: 'soak-faults', capacity: CAPACITY, deployment: 'separate', stateDir, args: ['--config', configFile],
    serveArgs: ['--claim-timeout', String(CLAIM_TIMEOUT_SECONDS)],
    // The proxy starts before the worker, which reaches the deployment only through it.
    rootUrlVia: async (rootUrl) => { proxy = await TestProxy.start(rootUrl); return proxy.url; },
  });
  let stopped = false;
  try {
    const p = proxy!;
    const random = seededRandom(SEED);
    for (const c of FAULTED_CALLS) p.randomly(c.label, c.method, c.path, FAULT_RATE, random, drawFault);
    await sleep(5000);
    const before = await countResources(engine, worker);
    const records: TaskRecord[] = [];
    const t0 = performance.now();
    let done = 0;
    await pool(Array.from({ length: total }, (_, i) => i), 8, async (i) => {
      const task = mixedTask(interruptedKind(i), options.image);
      const { taskId } = await submitTask(worker, task.payload, `soak-faults ${i} ${task.kind}`, { scopes: task.scopes });
      records.push({ taskId, kind: task.kind, expect: task.expect });
      if (task.kind === 'cancel') {
        await worker.command.waitForMessage('claimed task', 600_000, taskId);
        // After the first reclaim (4 s into the claim), so cancels meet reclaims too.
        await sleep(5000);
        await worker.queue.cancelTask(taskId);
      }
      // Logged once per run whatever happened (after 'task resolved', or after a report that failed).
      await worker.command.waitForMessage('task timings', 600_000, taskId);
      done++;
      if (done % 100 === 0) ctx.progress(`soak-faults: ${done}/${total} tasks, RSS ${round(readMemory(worker.pid)?.rssMb ?? Number.NaN)} MB, ${openFds(worker.pid)} fds`);
    });
    const lastTaskAt = performance.now();
    const minutes = (lastTaskAt - t0) / 60_000;
    await sleep(5000);
    const after = await countResources(engine, worker);
    // Each task: its runs in the queue, and what the worker said.
    const outcomes: Record<string, number> = {};
    const wrong: string[] = [];
    for (const r of records) {
      const { status } = await worker.queue.status(r.taskId) as { status: { runs: Array<{ state: string; reasonResolved?: string; reasonCreated?: string }> } };
      const runs = status.runs.map((run) => run.state === 'exception' ? `exception/${run.reasonResolved}` : run.state);
      const resolvedEvents = worker.command.events.filter((e) => e.message === 'task resolved' && e.taskId === r.taskId).length;
      const timings = worker.command.events.filter((e) => e.message === 'task timings' && e.taskId === r.taskId).length;
      const key = `${r.kind}: ${runs.join(', ') || 'no run'}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      if (runs.length !== 1 || runs[0] !== r.expect || resolvedEvents !== 1 || timings !== 1) {
        wrong.push(`${r.taskId} (${r.kind}, expected ${r.expect}): runs [${runs.join(', ')}], 'task resolved' ${resolvedEvents}x, 'task timings' ${timings}x`);
      }
    }
    const claimExpired = records.filter((r) => outcomes[`${r.kind}: exception/claim-expired`]).length;
    // Memory back once the work is over: the RSS a minute after the last task, against the idle RSS before the first.
    await sleep(Math.max(0, lastTaskAt + 60_000 - performance.now()));
    const idleAfter = { rssMb: round(readMemory(worker.pid)?.rssMb ?? Number.NaN, 0), fds: openFds(worker.pid) };
    await worker.stop();
    stopped = true;
    const leftovers = [
      ...readdirSync(path.join(stateDir, 'tmp')).map((f) => `tmp/${f}`),
      ...readdirSync(path.join(stateDir, 'runs')).map((f) => `runs/${f}`),
      ...(await engine.listContainers({ all: true, filters: { label: [`taskcluster.worker-id=${worker.workerId}`] } })).map((c) => `container ${c.Id.slice(0, 12)}`),
    ];
    const injected = Object.entries(p.injected).map(([label, counts]) => `${label}: ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')}`);
    const injectedTotal = Object.values(p.injected).flatMap((c) => Object.values(c)).reduce((a, b) => a + b, 0);
    const calls = FAULTED_CALLS.map((c) => `${c.label} ${p.count(c.method, c.path)}`).join(', ');
    const fig = (what: string) => `${what}, after ${total} tasks with faults against before the first`;
    const rows = [
      { benchmark: 'Soak with faults', figure: `tasks resolved exactly as their kind calls for (one run, by the worker) of ${total} (capacity ${CAPACITY}, mixed, ${injectedTotal} faults injected)`,
        worker: total - wrong.length, floor: total, unit: 'tasks', comparison: `${claimExpired} claim-expired; ${round(total / minutes, 0)} tasks/min`, target: `all ${total}`, met: wrong.length === 0 },
      { benchmark: 'Soak with faults', figure: fig('worker containers'), worker: after.containers, floor: before.containers, unit: '', target: '0', met: after.containers === 0 },
      { benchmark: 'Soak with faults', figure: fig('worker networks'), worker: after.networks, floor: before.networks, unit: '', target: 'as before', met: after.networks === before.networks },
      { benchmark: 'Soak with faults', figure: fig('worker volumes'), worker: after.volumes, floor: before.volumes, unit: '', target: 'as before', met: after.volumes === before.volumes },
      { benchmark: 'Soak with faults', figure: fig('cache instances (kept for reuse)'), worker: after.cacheInstances, floor: before.cacheInstances, unit: '',
        target: `≤ ${CAPACITY} (one cache, at most one instance per slot)`, met: after.cacheInstances <= CAPACITY },
      { benchmark: 'Soak with faults', figure: fig('open file descriptors'), worker: after.fds, floor: before.fds, unit: 'fds', target: 'within 10 %', met: after.fds <= before.fds * 1.1 },
      { benchmark: 'Soak with faults', figure: fig('files in the run journal'), worker: after.journalFiles, floor: before.journalFiles, unit: 'files', target: '0', met: after.journalFiles === 0 },
      { benchmark: 'Soak with faults', figure: fig('files in <stateDir>/tmp (finished logs the live log server still serves)'), worker: after.tmpFiles, floor: before.tmpFiles, unit: 'files',
        comparison: `${leftovers.length} left once the worker stopped`, target: '≤ liveLog.maxEndedLogs (64); 0 after stop', met: after.tmpFiles <= 64 && leftovers.length === 0 },
      { benchmark: 'Soak with faults', figure: `worker RSS 60 s after the last of ${total} tasks with faults against idle before the first`, worker: idleAfter.rssMb, floor: before.rssMb, unit: 'MB',
        comparison: `${after.rssMb} MB 5 s after the last task; ${idleAfter.fds} fds`, target: 'within 10 %', met: idleAfter.rssMb <= before.rssMb * 1.1 },
    ];
    return {
      name: 'soak-faults',
      title: 'Soak with faults',
      rows,
      details: { total, seed: SEED, faultRate: FAULT_RATE, claimTimeoutSeconds: CLAIM_TIMEOUT_SECONDS, before, after, idleAfter, outcomes, wrong, leftovers, injected: p.injected, calls, minutes: round(minutes, 2) },
      notes: [
        `Faults (seed ${SEED}, ${FAULT_RATE * 100} % of each faulted call; a connection closed, HTTP 503 or an answer 0.2–1.5 s late, equally likely): ${injected.join('; ')}. Calls made: ${calls}.`,
        `Outcomes: ${Object.entries(outcomes).sort().map(([k, n]) => `${k} ×${n}`).join('; ')}.`,
        ...(wrong.length ? [`Not as expected: ${wrong.slice(0, 10).join('; ')}${wrong.length > 10 ? ` (and ${wrong.length - 10} more)` : ''}.`] : []),
      ],
    };
  } finally {
    if (!stopped) await worker.stop();
    await proxy?.close();
    if (!options.keep) rmSync(stateDir, { recursive: true, force: true });
  }
}
