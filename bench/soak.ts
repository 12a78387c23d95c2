// Soak: cost as work grows. One worker at capacity 4 runs many mixed tasks (trivial ones, some
// failing, some with an artifact, some with a cache); compared are the first 100 and the last
// 100: per-task time from claim to resolution, the worker's RSS and open file descriptors, and
// after a minute idle the RSS against the idle RSS before any task. At the end nothing may be
// left in the state directory's temporary folder or the run journal.
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { BenchContext } from './lib/context.ts';
import { sleep } from './lib/context.ts';
import { mixedTask, soakKind } from './lib/mixed-tasks.ts';
import { openFds, readMemory } from './lib/proc.ts';
import type { BenchmarkResult } from './lib/report.ts';
import { median, round } from './lib/stats.ts';
import { describeStages, pool, stageMarks, stageTimings, submitTask } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';

export async function soak(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options } = ctx;
  const total = options.soakTasks;
  const worker = await WorkerProcess.start({ name: 'soak', capacity: 4, deployment: options.deployment, keepStateDir: true });
  let stopped = false;
  try {
    await sleep(5000);
    // RSS as anonymous + file pages every 250 tasks: the code the task path maps in shows as file pages, heaps as anonymous.
    const series: Array<{ tasks: number; anonMb: number; fileMb: number }> = [];
    const sample = (tasks: number): number => {
      const m = readMemory(worker.pid);
      if (m) series.push({ tasks, anonMb: round(m.anonMb, 1), fileMb: round(m.fileMb, 1) });
      return m?.rssMb ?? Number.NaN;
    };
    const idleBefore = sample(0);
    const fdsBefore = openFds(worker.pid);
    const at: Record<string, { rssMb: number; fds: number }> = {};
    const durations: number[] = new Array(total);
    const timingsOf: Array<Record<string, number> | undefined> = new Array(total);
    let done = 0;
    const ids = Array.from({ length: total }, (_, i) => i);
    await pool(ids, 8, async (i) => {
      const { payload, scopes } = mixedTask(soakKind(i), options.image);
      const { taskId } = await submitTask(worker, payload, `soak ${i}`, { scopes });
      const event = await worker.command.waitForMessage('task resolved', 600_000, taskId);
      const timings = await stageTimings(worker, taskId);
      durations[i] = timings?.resolved ?? Number.NaN;
      timingsOf[i] = timings;
      void event;
      done++;
      if (done === 100 || done === total) at[String(done)] = { rssMb: readMemory(worker.pid)?.rssMb ?? Number.NaN, fds: openFds(worker.pid) };
      if (done % 250 === 0) ctx.progress(`soak: ${done}/${total} tasks, RSS ${round(sample(done))} MB, ${openFds(worker.pid)} fds`);
    });
    const lastTaskAt = performance.now();
    const first = median(durations.slice(0, 100).filter(Number.isFinite));
    const last = median(durations.slice(-100).filter(Number.isFinite));
    // Where the time went, as the worker marks its stages: which stage grew from the first 100 to the last 100.
    const marksFirst = stageMarks(timingsOf.slice(0, 100));
    const marksLast = stageMarks(timingsOf.slice(-100));
    const after100 = at['100']!;
    const atEnd = at[String(total)]!;
    await sleep(Math.max(0, lastTaskAt + 60_000 - performance.now()));
    const idleAfter = sample(-60);
    const fdsIdle = openFds(worker.pid);
    // Finished logs stay on disk while the live log server may still serve them (liveLog.*):
    // what is left once the worker has stopped is what leaked.
    const servedLogs = readdirSync(path.join(worker.stateDir, 'tmp')).length;
    await worker.stop();
    stopped = true;
    const leftovers = [
      ...readdirSync(path.join(worker.stateDir, 'tmp')).map((f) => `tmp/${f}`),
      ...readdirSync(path.join(worker.stateDir, 'runs')).map((f) => `runs/${f}`),
    ];
    const within = (a: number, b: number, pct: number) => a <= b * (1 + pct / 100);
    return {
      name: 'soak',
      title: 'Soak',
      rows: [
        { benchmark: 'Soak', figure: `claim → resolved, median of the last 100 of ${total} tasks against the first 100 (capacity 4, mixed)`, worker: round(last, 0), floor: round(first, 0), unit: 'ms',
          comparison: `${round(last / first, 2)}×`, target: 'within 5 %', met: within(last, first, 5) },
        { benchmark: 'Soak', figure: `worker RSS after ${total} tasks against after 100`, worker: round(atEnd.rssMb, 0), floor: round(after100.rssMb, 0), unit: 'MB',
          target: 'within 10 %', met: within(atEnd.rssMb, after100.rssMb, 10) },
        { benchmark: 'Soak', figure: `open file descriptors after ${total} tasks against after 100`, worker: atEnd.fds, floor: after100.fds, unit: 'fds',
          target: 'within 10 %', met: within(atEnd.fds, after100.fds, 10) },
        { benchmark: 'Soak', figure: 'worker RSS 60 s after the last task against idle before the first', worker: round(idleAfter, 0), floor: round(idleBefore, 0), unit: 'MB',
          comparison: `${fdsIdle} fds (${fdsBefore} before)`, target: 'within 10 %', met: within(idleAfter, idleBefore, 10) },
        { benchmark: 'Soak', figure: 'left in <stateDir>/tmp and the run journal once the worker stopped', worker: leftovers.length, unit: 'files',
          comparison: `${servedLogs} finished logs still served before it stopped (at most liveLog.maxEndedLogs)`, target: '0', met: leftovers.length === 0 },
      ],
      notes: [
        `Worker RSS as anonymous + file pages (MB), by tasks done (-60: a minute after the last): ${series.map((x) => `${x.tasks}: ${x.anonMb} + ${x.fileMb}`).join(', ')}.`,
        `Stage marks (ms since the claim, medians): first 100: ${describeStages(marksFirst)}; last 100: ${describeStages(marksLast)}.`],
      details: { memorySeries: series, total, first100MedianMs: first, last100MedianMs: last, marksFirst, marksLast, after100, atEnd, idleBefore, idleAfter, fdsBefore, fdsIdle, leftovers },
    };
  } finally {
    if (!stopped) await worker.stop();
    if (!options.keep) rmSync(worker.stateDir, { recursive: true, force: true });
  }
}
