// Per-task overhead: trivial tasks (`true`) one after another at capacity 1, from createTask
// to the worker's 'task resolved', against create -> start -> wait -> remove of the same
// image straight on the engine. Worker and raw runs alternate so noise hits both alike.
// The worker's time is split with its log events and the engine's container events:
//   queue       createTask called -> 'claimed task'
//   prepare     'claimed task' -> container created (live log artifact, header, validate, plan, image)
//   create→start, run (start -> die), collect/remove (die -> destroy), upload+report (destroy -> 'task resolved')
import type { BenchContext } from './lib/context.ts';
import { sleep } from './lib/context.ts';
import { rawLifecycle } from './lib/raw-engine.ts';
import { readCpuMs, readMemory } from './lib/proc.ts';
import type { BenchmarkResult } from './lib/report.ts';
import { median, round, summary } from './lib/stats.ts';
import { describeStages, stageMarks, stageTimings, submitTask, waitResolved } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';

export interface TaskTimes {
  taskId: string;
  totalMs: number;
  queueMs: number;
  prepareMs: number;
  createToStartMs: number;
  runMs: number;
  collectRemoveMs: number;
  uploadReportMs: number;
  /** The worker's own 'task timings' (ms since claim at the end of each stage). */
  stages?: Record<string, number>;
}

/** Runs one trivial task on the worker and splits its time. */
export async function timedTask(ctx: BenchContext, worker: WorkerProcess, command: string[]): Promise<TaskTimes> {
  const submitted = await submitTask(worker, { image: ctx.options.image, command, maxRunTime: 600 }, 'overhead');
  const resolved = await waitResolved(worker, submitted.taskId, 120_000);
  const claimed = await worker.command.waitForMessage('claimed task', 1000, submitted.taskId);
  const c = await ctx.events.when(submitted.taskId, 'destroy', 5000);
  const stages = await stageTimings(worker, submitted.taskId);
  return {
    stages,
    taskId: submitted.taskId,
    totalMs: resolved.time - submitted.submittedAt,
    queueMs: claimed.time - submitted.submittedAt,
    prepareMs: c.create! - claimed.time,
    createToStartMs: c.start! - c.create!,
    runMs: c.die! - c.start!,
    collectRemoveMs: c.destroy! - c.die!,
    uploadReportMs: resolved.time - c.destroy!,
  };
}

export async function overhead(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options, engine } = ctx;
  const command = ['true'];
  const worker = await WorkerProcess.start({ name: 'overhead', capacity: 1, deployment: options.deployment, cpuProfDir: ctx.profileDir('overhead'), keepStateDir: options.keep });
  const samples: TaskTimes[] = [];
  const raw: Awaited<ReturnType<typeof rawLifecycle>>[] = [];
  let workerCpuMs = 0;
  let idleRss: number | undefined;
  try {
    ctx.progress(`overhead: warming up (worker pid ${worker.pid})`);
    for (let i = 0; i < 2; i++) { await timedTask(ctx, worker, command); await rawLifecycle(engine, options.image, command); }
    for (let i = 0; i < options.overheadTasks; i++) {
      raw.push(await rawLifecycle(engine, options.image, command));
      const cpu0 = readCpuMs(worker.pid);
      samples.push(await timedTask(ctx, worker, command));
      workerCpuMs += readCpuMs(worker.pid) - cpu0;
      if ((i + 1) % 10 === 0) ctx.progress(`overhead: ${i + 1}/${options.overheadTasks}`);
    }
    await sleep(3000);
    idleRss = readMemory(worker.pid)?.rssMb;
  } finally {
    await worker.stop();
  }
  const pick = <K extends keyof TaskTimes>(k: K) => samples.map((s) => s[k] as number);
  const workerMedian = median(pick('totalMs'));
  const rawMedian = median(raw.map((r) => r.totalMs));
  const added = workerMedian - rawMedian;
  const breakdown = {
    queue: round(median(pick('queueMs'))), prepare: round(median(pick('prepareMs'))),
    createToStart: round(median(pick('createToStartMs'))), run: round(median(pick('runMs'))),
    collectRemove: round(median(pick('collectRemoveMs'))), uploadReport: round(median(pick('uploadReportMs'))),
  };
  const rawBreakdown = {
    create: round(median(raw.map((r) => r.createMs))), start: round(median(raw.map((r) => r.startMs))),
    wait: round(median(raw.map((r) => r.waitMs))), remove: round(median(raw.map((r) => r.removeMs))),
  };
  const cpuPerTask = workerCpuMs / samples.length;
  const stages = stageMarks(samples.map((s) => s.stages));
  return {
    name: 'overhead',
    title: 'Per-task overhead',
    rows: [
      {
        benchmark: 'Per-task overhead', figure: `${samples.length} × \`true\`, capacity 1: createTask → resolved (median)`,
        worker: round(workerMedian, 0), floor: round(rawMedian, 0), unit: 'ms',
        comparison: `+${round(added, 0)} ms (${round(workerMedian / rawMedian, 2)}×)`,
        target: '≤ +100 ms', met: added <= 100,
      },
      {
        benchmark: 'Per-task overhead', figure: 'worker CPU per task', worker: round(cpuPerTask, 0), unit: 'ms',
      },
    ],
    details: {
      tasks: samples.length, worker: summary(pick('totalMs')), raw: summary(raw.map((r) => r.totalMs)),
      breakdownMedianMs: breakdown, workerStagesMedianMs: stages, rawBreakdownMedianMs: rawBreakdown, workerCpuMsPerTask: round(cpuPerTask),
      idleRssAfterTasksMb: idleRss === undefined ? null : round(idleRss), samples, rawSamples: raw,
    },
    notes: [
      `Worker breakdown (medians, ms): createTask → claimed ${breakdown.queue}; claimed → container created ${breakdown.prepare}; ` +
        `created → started ${breakdown.createToStart}; started → exited ${breakdown.run}; exited → removed ${breakdown.collectRemove}; ` +
        `removed → resolved (the rest of the log upload, which began with the removal; report) ${breakdown.uploadReport}.`,
      `Worker's own stage marks (median ms since the claim at the end of each stage; the live log publication overlaps the image, the cleanup the log upload): ${describeStages(stages)}.`,
      `Raw breakdown (medians, ms): create ${rawBreakdown.create}; start ${rawBreakdown.start}; wait ${rawBreakdown.wait}; remove ${rawBreakdown.remove}.`,
      `Worker CPU time per task: ${round(cpuPerTask, 0)} ms; idle RSS after the tasks: ${idleRss === undefined ? '?' : round(idleRss)} MB.`,
    ],
  };
}
