// Throughput: a batch of trivial tasks at capacity N (default 100 at 4), tasks per minute from
// the first createTask to the last 'task resolved', against the same number of raw container
// lifecycles run N at a time. Batches alternate raw / worker; the median batch is reported.
import type { BenchContext } from './lib/context.ts';
import { rawLifecycle } from './lib/raw-engine.ts';
import { readCpuMs } from './lib/proc.ts';
import type { BenchmarkResult } from './lib/report.ts';
import { median, round } from './lib/stats.ts';
import { pool, submitTask, waitResolved } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';

interface Batch { tasksPerMinute: number; seconds: number; workerCpuMs?: number; dockerdCpuMs?: number }

export async function throughput(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options, engine } = ctx;
  const n = options.throughputTasks;
  const capacity = options.capacity;
  const command = ['true'];
  const payload = { image: options.image, command, maxRunTime: 600 };
  const worker = await WorkerProcess.start({ name: 'throughput', capacity, deployment: options.deployment, cpuProfDir: ctx.profileDir('throughput'), keepStateDir: options.keep });
  const workerBatches: Batch[] = [];
  const rawBatches: Batch[] = [];
  try {
    ctx.progress(`throughput: warming up (worker pid ${worker.pid}, capacity ${capacity})`);
    await Promise.all(Array.from({ length: capacity }, async () => waitResolved(worker, (await submitTask(worker, payload)).taskId, 120_000)));
    for (let r = 0; r < options.repeats; r++) {
      const d0 = ctx.dockerdPid ? readCpuMs(ctx.dockerdPid) : Number.NaN;
      const t0 = performance.now();
      await pool(Array.from({ length: n }), capacity, () => rawLifecycle(engine, options.image, command));
      const rawMs = performance.now() - t0;
      rawBatches.push({ tasksPerMinute: n / (rawMs / 60_000), seconds: rawMs / 1000, dockerdCpuMs: ctx.dockerdPid ? readCpuMs(ctx.dockerdPid) - d0 : undefined });
      ctx.progress(`throughput: raw batch ${r + 1}: ${round(rawMs / 1000)} s`);

      const cpu0 = readCpuMs(worker.pid);
      const d1 = ctx.dockerdPid ? readCpuMs(ctx.dockerdPid) : Number.NaN;
      const start = Date.now();
      const submitted = await pool(Array.from({ length: n }), 8, () => submitTask(worker, payload, 'throughput'));
      const resolved = await Promise.all(submitted.map((s) => waitResolved(worker, s.taskId, 600_000)));
      const end = Math.max(...resolved.map((e) => e.time));
      workerBatches.push({
        tasksPerMinute: n / ((end - start) / 60_000), seconds: (end - start) / 1000,
        workerCpuMs: readCpuMs(worker.pid) - cpu0, dockerdCpuMs: ctx.dockerdPid ? readCpuMs(ctx.dockerdPid) - d1 : undefined,
      });
      ctx.progress(`throughput: worker batch ${r + 1}: ${round((end - start) / 1000)} s`);
    }
  } finally {
    await worker.stop();
  }
  const w = median(workerBatches.map((b) => b.tasksPerMinute));
  const raw = median(rawBatches.map((b) => b.tasksPerMinute));
  const cpuPerTask = median(workerBatches.map((b) => (b.workerCpuMs ?? Number.NaN) / n));
  const dockerdWorker = median(workerBatches.map((b) => (b.dockerdCpuMs ?? Number.NaN) / n));
  const dockerdRaw = median(rawBatches.map((b) => (b.dockerdCpuMs ?? Number.NaN) / n));
  return {
    name: 'throughput',
    title: 'Throughput',
    rows: [{
      benchmark: 'Throughput', figure: `${n} × \`true\` at capacity ${capacity}`, worker: round(w, 0), floor: round(raw, 0), unit: 'tasks/min',
      comparison: `${round((w / raw) * 100, 0)} % of raw`, target: '≥ 85 % of raw', met: w / raw >= 0.85,
    }],
    details: { tasks: n, capacity, workerBatches, rawBatches, workerCpuMsPerTask: round(cpuPerTask), dockerdCpuMsPerTask: { worker: round(dockerdWorker), raw: round(dockerdRaw) } },
    notes: [
      `Per task: worker process CPU ${round(cpuPerTask, 0)} ms; dockerd CPU ${round(dockerdWorker, 0)} ms with the worker, ${round(dockerdRaw, 0)} ms raw (${ctx.options.repeats} batch(es), medians).`,
    ],
  };
}
