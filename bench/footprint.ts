// Footprint: the worker's resident memory when idle, and how soon after its process starts it
// asks for work. 'worker started' is logged right after the claim loop issued its first
// claimWork (same tick), so spawn -> 'worker started' is the time to the first claimWork; a
// task queued before the worker started (in the same state directory) also gives spawn ->
// 'claimed task'. The floor is a bare `node -e 0` start on the same Node.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import type { BenchContext } from './lib/context.ts';
import { sleep } from './lib/context.ts';
import { readMemory } from './lib/proc.ts';
import type { BenchmarkResult } from './lib/report.ts';
import { median, round } from './lib/stats.ts';
import { taskDefinition, waitResolved } from './lib/tasks.ts';
import { startDeployment, WorkerProcess } from './lib/worker-process.ts';

interface StartSample { toEmbeddedMs?: number; toStartedMs: number; idleRssMb: number; idleHwmMb: number }

/** A fresh worker with nothing to do: time to its first claimWork, resident memory 5 s later. */
async function idleStart(ctx: BenchContext, deployment: 'embedded' | 'separate'): Promise<{ sample: StartSample; stopMs: number }> {
  const worker = await WorkerProcess.start({ name: 'footprint', capacity: 1, deployment, cpuProfDir: deployment === 'embedded' ? ctx.profileDir('footprint') : undefined });
  try {
    const started = await worker.command.waitForMessage('worker started', 60_000);
    const embedded = worker.command.events.find((e) => e.message === 'embedded deployment listening');
    await sleep(5000);
    const m = readMemory(worker.pid);
    return {
      sample: {
        toEmbeddedMs: embedded ? embedded.time - worker.command.spawnedAt : undefined,
        toStartedMs: started.time - worker.command.spawnedAt, idleRssMb: m?.rssMb ?? Number.NaN, idleHwmMb: m?.hwmMb ?? Number.NaN,
      },
      stopMs: await worker.stop(),
    };
  } catch (err) {
    await worker.stop();
    throw err;
  }
}

export async function footprint(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options } = ctx;
  const starts: StartSample[] = [];
  const startsAlone: StartSample[] = [];
  const toClaimed: number[] = [];
  const stopAfterTask: number[] = [];
  const stopFresh: number[] = [];
  const nodeStart: number[] = [];
  const repeats = Math.max(options.repeats, 3);
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    nodeStart.push(performance.now() - t);
  }
  for (let r = 0; r < repeats; r++) {
    // A fresh worker with nothing to do: alone (deployment in its own process), and hosting the embedded deployment.
    const alone = await idleStart(ctx, 'separate');
    startsAlone.push(alone.sample);
    const hosting = await idleStart(ctx, 'embedded');
    starts.push(hosting.sample);
    stopFresh.push(hosting.stopMs);
    // A task already waiting when the worker starts.
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'bench-footprint-queued-'));
    try {
      const workerType = `queued-${r}-${Date.now().toString(36)}`;
      const deployment = await startDeployment(stateDir);
      const queue = new taskcluster.Queue({ rootUrl: deployment.credentials.rootUrl, credentials: deployment.credentials });
      const taskId = taskcluster.slugid() as string;
      await queue.createTask(taskId, taskDefinition(`bench/${workerType}`, { image: options.image, command: ['true'], maxRunTime: 60 }, 'queued before start'));
      await deployment.command.stop();
      const worker = await WorkerProcess.start({ name: 'footprint', capacity: 1, stateDir, workerType, noWait: true });
      try {
        const claimed = await worker.command.waitForMessage('claimed task', 60_000, taskId);
        toClaimed.push(claimed.time - worker.command.spawnedAt);
        await waitResolved(worker, taskId, 60_000);
      } finally {
        stopAfterTask.push(await worker.stop());
      }
    } finally {
      if (!options.keep) rmSync(stateDir, { recursive: true, force: true });
    }
    ctx.progress(`footprint: start ${r + 1}/${repeats}: worker started after ${round(starts.at(-1)!.toStartedMs, 0)} ms, idle RSS ${round(startsAlone.at(-1)!.idleRssMb)} MB alone, ${round(starts.at(-1)!.idleRssMb)} MB with the embedded deployment, queued task claimed after ${round(toClaimed.at(-1)!, 0)} ms`);
  }
  const idle = median(startsAlone.map((s) => s.idleRssMb));
  const idleHosting = median(starts.map((s) => s.idleRssMb));
  const toStarted = median(starts.map((s) => s.toStartedMs));
  const claimed = median(toClaimed);
  const nodeFloor = median(nodeStart);
  const toEmbedded = median(starts.flatMap((s) => s.toEmbeddedMs === undefined ? [] : [s.toEmbeddedMs]));
  return {
    name: 'footprint',
    title: 'Footprint',
    rows: [
      { benchmark: 'Footprint', figure: 'idle RSS of the worker (deployment in its own process)', worker: round(idle, 0), unit: 'MB', target: '≤ 100 MB', met: idle <= 100 },
      { benchmark: 'Footprint', figure: 'idle RSS with the embedded deployment in the process (`make start`)', worker: round(idleHosting, 0), unit: 'MB' },
      { benchmark: 'Footprint', figure: 'process start → first claimWork', worker: round(toStarted, 0), floor: round(nodeFloor, 0), unit: 'ms',
        comparison: `floor: \`node -e 0\``, target: '≤ 1000 ms', met: toStarted <= 1000 },
      { benchmark: 'Footprint', figure: 'process start → task queued before start claimed', worker: round(claimed, 0), unit: 'ms' },
      { benchmark: 'Footprint', figure: 'SIGTERM → exit, idle after one task', worker: round(median(stopAfterTask), 0), unit: 'ms',
        comparison: `${round(median(stopFresh), 0)} ms when it never ran a task` },
    ],
    details: { starts, startsAlone, toClaimedMs: toClaimed, stopAfterTaskMs: stopAfterTask, stopFreshMs: stopFresh, nodeStartMs: nodeStart, toEmbeddedListeningMs: round(toEmbedded) },
    notes: [
      `Process start is the bench's spawn of \`bin/worker start\` (bash wrapper, scripts/node-env.sh, then node). Spawn → embedded deployment listening: ${round(toEmbedded, 0)} ms (median); bare \`node -e 0\`: ${round(nodeFloor, 0)} ms.`,
      `Idle RSS is VmRSS 5 s after 'worker started' (peak during start, VmHWM: ${round(median(startsAlone.map((s) => s.idleHwmMb)), 0)} MB alone, ${round(median(starts.map((s) => s.idleHwmMb)), 0)} MB hosting the deployment). Start → first claimWork is of the worker hosting the embedded deployment (${round(median(startsAlone.map((s) => s.toStartedMs)), 0)} ms alone).`,
    ],
  };
}
