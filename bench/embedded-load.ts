// The embedded deployment under load: `worker serve` in its own process, driven over HTTP by
// taskcluster-client. At each store size (empty, then seeded with 10,000 and with 100,000 real
// tasks made by createTask) it measures createTask per second with 16 concurrent clients and
// claims per second with 16 workers each calling claimWork for 4 tasks, on a fresh task queue
// holding exactly the tasks just created (so no claimWork ever long-polls an empty queue).
// Also the serve process's CPU time per create and per claim (steadier than rates under a
// shared machine's noise), its RSS with the store full, the store's bytes on disk, and the
// query plans of the hot statements read from the store itself.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import taskcluster from 'taskcluster-client';
import type { BenchContext } from './lib/context.ts';
import { sleep } from './lib/context.ts';
import { readCpuMs, readMemory } from './lib/proc.ts';
import type { BenchmarkResult, Row } from './lib/report.ts';
import { median, round } from './lib/stats.ts';
import { startDeployment, type RootCredentials } from './lib/worker-process.ts';

const CLIENTS = 16;
const CLAIMERS = 16;
const CLAIM_BATCH = 4;
const BENCH = 'Embedded deployment under load';

interface Phase { storeTasks: number; createsPerSecond: number; claimsPerSecond: number; cpuMsPerCreate: number; cpuMsPerClaim: number }

/** A task as the bench's other tasks look (a docker-worker payload), in `taskQueueId`. */
function definition(taskQueueId: string, i: number): Record<string, unknown> {
  return {
    taskQueueId,
    created: new Date().toISOString(),
    deadline: taskcluster.fromNow('1 day').toISOString(),
    expires: taskcluster.fromNow('2 days').toISOString(),
    metadata: { name: `load ${i}`, description: 'make bench: embedded deployment under load', owner: 'bench@localhost.localdomain', source: 'https://localhost/bench' },
    payload: { image: 'taskenv_pass:latest', command: ['/bin/sh', '-c', `echo task ${i}`], maxRunTime: 600, env: { N: String(i) } },
    routes: [`index.bench.load.t${i % 100}`],
    tags: { kind: 'load' },
  };
}

function clients(credentials: RootCredentials, n: number): any[] {
  return Array.from({ length: n }, () => new taskcluster.Queue({
    rootUrl: credentials.rootUrl, credentials: { clientId: credentials.clientId, accessToken: credentials.accessToken },
    retries: 0, timeout: 60_000,
  }));
}

/** Creates `count` tasks in `taskQueueId` with every client busy; ms taken. */
async function createTasks(queues: any[], taskQueueId: string, count: number, onProgress?: (done: number) => void): Promise<number> {
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(queues.map(async (queue) => {
    while (next < count) {
      const i = next++;
      await queue.createTask(taskcluster.slugid(), definition(taskQueueId, i));
      done++;
      if (onProgress && done % 5000 === 0) onProgress(done);
    }
  }));
  return performance.now() - t0;
}

/**
 * Claims all `count` pending tasks of `taskQueueId`: each claimer asks for up to 4 of the
 * tasks not yet asked for by another, so no call finds the queue empty and long-polls.
 */
async function claimAll(queues: any[], taskQueueId: string, count: number): Promise<number> {
  let unasked = count;
  let claimed = 0;
  const t0 = performance.now();
  await Promise.all(queues.map(async (queue, w) => {
    while (unasked > 0) {
      const n = Math.min(CLAIM_BATCH, unasked);
      unasked -= n;
      const answer = await queue.claimWork(taskQueueId, { workerGroup: 'load', workerId: `claimer-${w}`, tasks: n });
      const got = (answer.tasks as unknown[]).length;
      claimed += got;
      if (got !== n) throw new Error(`claimWork for ${n} tasks of ${taskQueueId} answered ${got}: the store lost pending tasks`);
    }
  }));
  if (claimed !== count) throw new Error(`claimed ${claimed} of ${count} tasks`);
  return performance.now() - t0;
}

/** Database, WAL and blob files of the store, in bytes. */
function storeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** EXPLAIN QUERY PLAN of the hot statements, read from the store (read-only, beside the server). */
function queryPlans(file: string, taskQueueId: string): Record<string, string[]> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const plan = (sql: string, ...args: (string | number)[]) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail);
    return {
      pendingPick: plan(`SELECT task_id FROM queue_tasks INDEXED BY queue_tasks_by_queue WHERE task_queue_id = ? AND state = 'pending' AND deadline > ?
        ORDER BY priority_rank, pending_since, rowid LIMIT ?`, taskQueueId, Date.now(), 4),
      taskLoad: plan('SELECT task_id, definition, retries_left, runs FROM queue_tasks WHERE task_id = ?', 'x'),
      groupLookup: plan('SELECT * FROM queue_task_groups WHERE task_group_id = ?', 'x'),
      workerUpsert: plan('SELECT quarantine_until FROM queue_workers WHERE task_queue_id = ? AND worker_group = ? AND worker_id = ?', taskQueueId, 'load', 'c'),
      expirySweep: plan('SELECT task_id FROM queue_tasks WHERE expires <= ? LIMIT ?', Date.now(), 200),
      deadlineSweep: plan(`SELECT task_id FROM queue_tasks WHERE state IN ('unscheduled', 'pending', 'running') AND deadline <= ? LIMIT ?`, Date.now(), 200),
    };
  } finally {
    db.close();
  }
}

export async function embeddedLoad(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options } = ctx;
  const levels = options.quick ? [0, 2_000, 10_000] : [0, 10_000, 100_000];
  const measured = options.quick ? 1_000 : 3_000;
  const rounds = options.quick ? 1 : 2;
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'bench-embedded-load-'));
  const { command, credentials } = await startDeployment(stateDir, ctx.profileDir('embedded-load'));
  const storeDir = path.join(stateDir, 'embedded');
  const queues = clients(credentials, Math.max(CLIENTS, CLAIMERS));
  const phases: Phase[] = [];
  const suffix = Date.now().toString(36);
  let seeded = 0;
  let seedMs = 0;
  let plans: Record<string, string[]> = {};
  let fullRss = Number.NaN;
  let fullHwm = Number.NaN;
  let fullBytes = Number.NaN;
  try {
    await sleep(1000);
    const idleRss = readMemory(command.pid)?.rssMb ?? Number.NaN;
    for (const level of levels) {
      if (level > seeded) {
        // Seeded tasks wait in ten other task queues: the store holds them, the claims below never see them.
        const t = performance.now();
        const per = Math.ceil((level - seeded) / 10);
        for (let q = 0; q < 10; q++) {
          await createTasks(queues.slice(0, CLIENTS), `load/seed-${q}-${suffix}`, per,
            (done) => ctx.progress(`embedded-load: seeding ${seeded + q * per + done}/${level}`));
        }
        seeded += per * 10;
        seedMs += performance.now() - t;
        ctx.progress(`embedded-load: ${seeded} tasks in the store (seeding at ${round((seeded / seedMs) * 1000, 0)}/s)`);
      }
      const creates: number[] = [];
      const claims: number[] = [];
      const createCpu: number[] = [];
      const claimCpu: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const taskQueueId = `load/measure-${level}-${r}-${suffix}`;
        let cpu = readCpuMs(command.pid);
        const createMs = await createTasks(queues.slice(0, CLIENTS), taskQueueId, measured);
        createCpu.push((readCpuMs(command.pid) - cpu) / measured);
        cpu = readCpuMs(command.pid);
        const claimMs = await claimAll(queues.slice(0, CLAIMERS), taskQueueId, measured);
        claimCpu.push((readCpuMs(command.pid) - cpu) / measured);
        creates.push((measured / createMs) * 1000);
        claims.push((measured / claimMs) * 1000);
      }
      const phase: Phase = {
        storeTasks: seeded, createsPerSecond: median(creates), claimsPerSecond: median(claims),
        cpuMsPerCreate: median(createCpu), cpuMsPerClaim: median(claimCpu),
      };
      phases.push(phase);
      ctx.progress(`embedded-load: ${seeded} stored: ${round(phase.createsPerSecond, 0)} creates/s (${round(phase.cpuMsPerCreate, 2)} ms CPU each), ` +
        `${round(phase.claimsPerSecond, 0)} claims/s (${round(phase.cpuMsPerClaim, 2)} ms CPU each)`);
    }
    await sleep(2000);
    const m = readMemory(command.pid);
    fullRss = m?.rssMb ?? Number.NaN;
    fullHwm = m?.hwmMb ?? Number.NaN;
    fullBytes = storeBytes(storeDir);
    plans = queryPlans(path.join(storeDir, 'embedded.sqlite'), `load/measure-0-0-${suffix}`);
    const empty = phases[0]!;
    const rows: Row[] = [];
    for (const p of phases.slice(1)) {
      const createRatio = p.createsPerSecond / empty.createsPerSecond;
      const claimRatio = p.claimsPerSecond / empty.claimsPerSecond;
      rows.push(
        { benchmark: BENCH, figure: `createTask/s, 16 clients, ${p.storeTasks.toLocaleString('en')} tasks stored`, worker: round(p.createsPerSecond, 0),
          floor: round(empty.createsPerSecond, 0), unit: '/s',
          comparison: `${round(createRatio * 100, 0)} % of the empty store; serve CPU ${round(p.cpuMsPerCreate, 2)} ms per create (empty: ${round(empty.cpuMsPerCreate, 2)})`,
          target: '≥ 80 % of the empty store', met: createRatio >= 0.8 },
        { benchmark: BENCH, figure: `claims/s, 16 workers × 4, ${p.storeTasks.toLocaleString('en')} tasks stored`, worker: round(p.claimsPerSecond, 0),
          floor: round(empty.claimsPerSecond, 0), unit: '/s',
          comparison: `${round(claimRatio * 100, 0)} % of the empty store; serve CPU ${round(p.cpuMsPerClaim, 2)} ms per claim (empty: ${round(empty.cpuMsPerClaim, 2)})`,
          target: '≥ 80 % of the empty store', met: claimRatio >= 0.8 },
      );
    }
    rows.push({ benchmark: BENCH, figure: `\`worker serve\` RSS with ${seeded.toLocaleString('en')} tasks stored`, worker: round(fullRss, 0), unit: 'MB',
      comparison: `idle at start ${round(idleRss, 0)} MB; peak ${round(fullHwm, 0)} MB; store ${round(fullBytes / 1024 / 1024, 0)} MB on disk`,
      target: '≤ 200 MB', met: fullRss <= 200 });
    return {
      name: 'embedded-load',
      title: BENCH,
      rows,
      details: { phases, idleRssMb: idleRss, fullRssMb: fullRss, fullHwmMb: fullHwm, storeBytes: fullBytes, seedTasksPerSecond: round((seeded / seedMs) * 1000, 0), queryPlans: plans },
      notes: [
        `Empty store: ${round(empty.createsPerSecond, 0)} creates/s and ${round(empty.claimsPerSecond, 0)} claims/s (each phase creates ${measured.toLocaleString('en')} tasks in a fresh task queue, then claims them; median of ${rounds}). The store was seeded with real createTask calls at ${round((seeded / seedMs) * 1000, 0)}/s into ten other task queues, where they stay pending.`,
        `The bench's clients share the two CPUs with \`worker serve\`: the serve process's CPU per operation is the figure to compare across store sizes on a busy machine.`,
        `Query plans: pending pick: ${plans.pendingPick?.join('; ')}; task load: ${plans.taskLoad?.join('; ')}.`,
      ],
    };
  } finally {
    await command.stop();
    if (!options.keep) rmSync(stateDir, { recursive: true, force: true });
  }
}
