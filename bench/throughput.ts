// Throughput: for each capacity N (default 4, 8 and 16), a batch of trivial tasks (default 80),
// tasks per minute from the first createTask to the last 'task resolved', against the same
// number of raw container lifecycles run N at a time. Batches alternate raw / worker; the median
// batch is reported. One worker process per capacity, warmed up with N tasks first. Worker and
// dockerd CPU per task are counted next to each batch.
import type { BenchContext } from './lib/context.ts';
import { rawLifecycle } from './lib/raw-engine.ts';
import { readCpuMs } from './lib/proc.ts';
import type { BenchmarkResult, Row } from './lib/report.ts';
import { median, round } from './lib/stats.ts';
import { pool, submitTask, waitResolved } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';

interface Batch {
  tasksPerMinute: number; seconds: number; workerCpuMs?: number; deploymentCpuMs?: number; dockerdCpuMs?: number;
  /** Tasks under way on average (sum of claimed → resolved, or of raw lifecycles, over the batch's time): below the capacity, slots stood idle. */
  meanRunning?: number;
  /** Median claimed → resolved (worker) or create → removed (raw), ms. */
  medianTaskMs?: number;
}

interface CapacityResult {
  capacity: number;
  workerBatches: Batch[];
  rawBatches: Batch[];
  tasksPerMinute: { worker: number; raw: number };
  cpuMsPerTask: { worker: number; deployment: number; dockerdWorker: number; dockerdRaw: number };
}

const cpu = (pid: number | undefined) => pid ? readCpuMs(pid) : Number.NaN;

async function atCapacity(ctx: BenchContext, capacity: number): Promise<CapacityResult> {
  const { options, engine } = ctx;
  const n = options.throughputTasks;
  const command = ['true'];
  const payload = { image: options.image, command, maxRunTime: 600 };
  const worker = await WorkerProcess.start({ name: `throughput-${capacity}`, capacity, deployment: options.deployment, cpuProfDir: ctx.profileDir(`throughput-${capacity}`), keepStateDir: options.keep });
  const deploymentPid = worker.deploymentCommand?.pid;
  const workerBatches: Batch[] = [];
  const rawBatches: Batch[] = [];
  try {
    ctx.progress(`throughput: capacity ${capacity}: warming up (worker pid ${worker.pid})`);
    await Promise.all(Array.from({ length: capacity }, async () => waitResolved(worker, (await submitTask(worker, payload)).taskId, 120_000)));
    for (let r = 0; r < options.repeats; r++) {
      const d0 = cpu(ctx.dockerdPid);
      const t0 = performance.now();
      const lifecycles = await pool(Array.from({ length: n }), capacity, () => rawLifecycle(engine, options.image, command));
      const rawMs = performance.now() - t0;
      const rawTaskMs = lifecycles.map((l) => l.totalMs);
      rawBatches.push({ tasksPerMinute: n / (rawMs / 60_000), seconds: round(rawMs / 1000, 2), dockerdCpuMs: cpu(ctx.dockerdPid) - d0,
        meanRunning: round(rawTaskMs.reduce((a, b) => a + b, 0) / rawMs, 2), medianTaskMs: round(median(rawTaskMs), 0) });

      const w0 = cpu(worker.pid);
      const p0 = cpu(deploymentPid);
      const d1 = cpu(ctx.dockerdPid);
      const start = Date.now();
      const submitted = await pool(Array.from({ length: n }), 8, () => submitTask(worker, payload, 'throughput'));
      const resolved = await Promise.all(submitted.map((s) => waitResolved(worker, s.taskId, 600_000)));
      const end = Math.max(...resolved.map((e) => e.time));
      const taskMs = await Promise.all(resolved.map(async (e) => e.time - (await worker.command.waitForMessage('claimed task', 1000, e.taskId)).time));
      workerBatches.push({
        meanRunning: round(taskMs.reduce((a, b) => a + b, 0) / (end - start), 2), medianTaskMs: round(median(taskMs), 0),
        tasksPerMinute: n / ((end - start) / 60_000), seconds: round((end - start) / 1000, 2),
        workerCpuMs: cpu(worker.pid) - w0, deploymentCpuMs: cpu(deploymentPid) - p0, dockerdCpuMs: cpu(ctx.dockerdPid) - d1,
      });
      ctx.progress(`throughput: capacity ${capacity}, batch ${r + 1}: raw ${round(rawMs / 1000)} s (${rawBatches.at(-1)!.meanRunning} running on average), ` +
        `worker ${round((end - start) / 1000)} s (${workerBatches.at(-1)!.meanRunning} running)`);
    }
  } finally {
    await worker.stop();
  }
  const perTask = (batches: Batch[], key: 'workerCpuMs' | 'deploymentCpuMs' | 'dockerdCpuMs') => round(median(batches.map((b) => (b[key] ?? Number.NaN) / n)));
  return {
    capacity, workerBatches, rawBatches,
    tasksPerMinute: { worker: median(workerBatches.map((b) => b.tasksPerMinute)), raw: median(rawBatches.map((b) => b.tasksPerMinute)) },
    cpuMsPerTask: { worker: perTask(workerBatches, 'workerCpuMs'), deployment: perTask(workerBatches, 'deploymentCpuMs'), dockerdWorker: perTask(workerBatches, 'dockerdCpuMs'), dockerdRaw: perTask(rawBatches, 'dockerdCpuMs') },
  };
}

export async function throughput(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options } = ctx;
  const n = options.throughputTasks;
  const results: CapacityResult[] = [];
  for (const capacity of options.capacities) results.push(await atCapacity(ctx, capacity));
  const rows: Row[] = results.map((r) => {
    const ratio = r.tasksPerMinute.worker / r.tasksPerMinute.raw;
    return {
      benchmark: 'Throughput', figure: `${n} × \`true\` at capacity ${r.capacity}`, worker: round(r.tasksPerMinute.worker, 0), floor: round(r.tasksPerMinute.raw, 0), unit: 'tasks/min',
      comparison: `${round(ratio * 100, 0)} % of raw at the same parallelism`, target: '≥ 85 % of raw', met: ratio >= 0.85,
    };
  });
  return {
    name: 'throughput',
    title: 'Throughput',
    rows,
    details: { tasks: n, capacities: results },
    notes: results.map((r) => `Capacity ${r.capacity}, per task (medians of ${options.repeats} batch(es)): worker process CPU ${r.cpuMsPerTask.worker} ms` +
      `${options.deployment === 'separate' ? `, deployment process ${r.cpuMsPerTask.deployment} ms` : ''}; dockerd CPU ${r.cpuMsPerTask.dockerdWorker} ms with the worker, ${r.cpuMsPerTask.dockerdRaw} ms raw; ` +
      `tasks under way on average ${median(r.workerBatches.map((b) => b.meanRunning ?? Number.NaN))} (raw ${median(r.rawBatches.map((b) => b.meanRunning ?? Number.NaN))}), ` +
      `claimed → resolved ${median(r.workerBatches.map((b) => b.medianTaskMs ?? Number.NaN))} ms (raw lifecycle ${median(r.rawBatches.map((b) => b.medianTaskMs ?? Number.NaN))} ms).`),
  };
}
