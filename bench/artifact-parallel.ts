// A task's many artifacts, uploaded in parallel: 16 file artifacts of 64 MiB each, and one
// directory artifact of 2,000 small files (512 B to 16 KiB: about half go inline in
// createUpload, half through a PUT). For each parallelism value a worker runs with
// artifacts.uploadParallelism set to it, and the floor runs at the same parallelism against the
// same deployment (bench/lib/raw-artifacts.ts: the archive API streamed into the artifact
// protocol's calls and PUTs, nothing of the worker's). Both clocks start at the container's
// exit (the engine's die event): the engine takes a while after it before the container counts
// as stopped (it unmounts the container's filesystem, which syncs what the task wrote: 0.57 s
// after writing 1 GiB here, 0.05 s after 1 MiB), and no client reads the archive before then.
// So the floor runs its own container of the same command each time, waits for it as
// `docker wait` does, and its time runs to its last finishArtifact; the worker's to 'task
// resolved' (so it also holds container removal, the task log upload and the report). The
// upload stage alone compares the worker's containerExited → artifactsCollected with the
// floor's first archive request → last finishArtifact. Part of the `artifact` benchmark.
import type { BenchContext } from './lib/context.ts';
import { MemorySampler, readCpuMs } from './lib/proc.ts';
import { RAW_OWNER, rawCreateOptions } from './lib/raw-engine.ts';
import { rawCollect, rawRun, type RawArtifact } from './lib/raw-artifacts.ts';
import type { Row } from './lib/report.ts';
import { MIB, mbPerSecond, median, round } from './lib/stats.ts';
import { stageTimings, submitTask, waitResolved } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';
import { DEFAULT_UPLOAD_PARALLELISM } from '../lib/task/collect.ts';
import { LABEL_TASK_ID } from '../lib/docker/labels.ts';

interface Case {
  name: 'many' | 'small';
  title: string;
  command: string[];
  artifacts: RawArtifact[];
  /** Bytes (many) or files (small) per run. */
  amount: number;
  unit: 'MB/s' | 'files/s';
}

function cases(quick: boolean): Case[] {
  const files = 16;
  const fileMib = quick ? 4 : 64;
  const smallFiles = quick ? 200 : 2000;
  const many: RawArtifact[] = Array.from({ length: files }, (_, i) => ({ name: `public/many/f${i + 1}.bin`, path: `/tmp/many/f${i + 1}.bin`, type: 'file' }));
  return [
    {
      name: 'many', title: `${files} × ${fileMib} MiB file artifacts`, artifacts: many, amount: files * fileMib * MIB, unit: 'MB/s',
      command: ['sh', '-c', `mkdir /tmp/many && for i in $(seq 1 ${files}); do head -c ${fileMib * MIB} /dev/urandom > /tmp/many/f$i.bin; done`],
    },
    {
      name: 'small', title: `${smallFiles} small files (0.5-16 KiB) in one directory artifact`, amount: smallFiles, unit: 'files/s',
      artifacts: [{ name: 'public/small', path: '/tmp/small', type: 'directory' }],
      command: ['sh', '-c', `mkdir /tmp/small && head -c 16384 /dev/urandom > /tmp/seed && for i in $(seq 1 ${smallFiles}); do head -c $(( (i % 32 + 1) * 512 )) /tmp/seed > /tmp/small/f$i.bin; done`],
    },
  ];
}

interface Sample {
  parallelism: number;
  /** Floor: container exit (die) → last finishArtifact; and its upload stage alone (first archive request → last finishArtifact). */
  rawMs: number; rawUploadMs: number; rawCpuMs: number;
  workerMs: number; collectMs?: number; peakRssMb: number; cpuMs: number;
}

function rate(c: Case, ms: number): number {
  return c.unit === 'MB/s' ? mbPerSecond(c.amount, ms) : c.amount / (ms / 1000);
}

export async function artifactParallel(ctx: BenchContext): Promise<{ rows: Row[]; notes: string[]; details: Record<string, unknown> }> {
  const { options, engine } = ctx;
  const parallelisms = options.artifactParallelisms ?? (options.quick ? [1, DEFAULT_UPLOAD_PARALLELISM] : [1, 4, 8, 16]);
  const failures: string[] = [];
  const all = cases(options.quick);
  const samples: Record<string, Sample[]> = { many: [], small: [] };
  /** The floor once: its own container of the case's command, from its exit to its last finishArtifact. */
  const runRaw = async (c: Case, worker: WorkerProcess, parallelism: number) => {
    // The label the engine events (bench/lib/docker-events.ts) find a container by.
    const label = `raw-artifacts-${RAW_OWNER}-${++rawRuns}`;
    const create = rawCreateOptions(options.image, c.command);
    const container = await engine.createContainer({ ...create, Labels: { ...create.Labels, [LABEL_TASK_ID]: label } });
    try {
      const run = await rawRun(worker.credentials, 'raw artifacts');
      await container.start();
      const { die } = await ctx.events.when(label, 'die', 600_000);
      await container.wait();
      const raw = await rawCollect(engine, container.id, c.artifacts, worker.credentials, parallelism, run);
      return { ...raw, fromExitMs: raw.endedAt - die! };
    } finally {
      await container.remove({ force: true, v: true }).catch(() => undefined);
    }
  };
  let rawRuns = 0;
  for (const parallelism of parallelisms) {
    // A parallelism whose worker fails (a busy machine: no start within the harness's wait)
    // is reported as such; the others still are.
    let worker: WorkerProcess | undefined;
    try {
      worker = await WorkerProcess.start({
        name: `artifact-p${parallelism}`, capacity: 1, deployment: options.deployment, keepStateDir: options.keep,
        cpuProfDir: ctx.profileDir(`artifact-p${parallelism}`), env: { WORKER_UPLOAD_PARALLELISM: String(parallelism) },
      });
      for (const c of all) {
        for (let r = 0; r < (options.quick ? 1 : 2); r++) {
          // The floor and the worker take turns going first (a busy machine drifts).
          const rawFirst = r % 2 === 0 ? await runRaw(c, worker, parallelism) : undefined;
          const sampler = new MemorySampler(worker.pid).start();
          const cpu0 = readCpuMs(worker.pid);
          const submitted = await submitTask(worker, {
            image: options.image, command: c.command, maxRunTime: 3600,
            artifacts: Object.fromEntries(c.artifacts.map((a) => [a.name, { type: a.type, path: a.path }])),
          }, `artifacts ${c.name} p${parallelism}`);
          const resolved = await waitResolved(worker, submitted.taskId, 3_600_000);
          const memory = sampler.stop();
          const die = (await ctx.events.when(submitted.taskId, 'die', 1000)).die!;
          const stages = await stageTimings(worker, submitted.taskId);
          const collectMs = stages?.artifactsCollected !== undefined && stages.containerExited !== undefined ? stages.artifactsCollected - stages.containerExited : undefined;
          const cpuMs = readCpuMs(worker.pid) - cpu0;
          const raw = rawFirst ?? await runRaw(c, worker, parallelism);
          const rawMs = raw.fromExitMs;
          const sample: Sample = { parallelism, rawMs, rawUploadMs: raw.ms, rawCpuMs: raw.cpuMs, workerMs: resolved.time - die, collectMs, peakRssMb: memory.peakMb, cpuMs };
          samples[c.name]!.push(sample);
          ctx.progress(`artifacts ${c.name}, parallelism ${parallelism}: raw ${round(rate(c, rawMs))} ${c.unit}, worker ${round(rate(c, sample.workerMs))} ${c.unit} ` +
            `(${round((rawMs / sample.workerMs) * 100, 0)} %), peak RSS ${round(memory.peakMb)} MB`);
        }
      }
    } catch (err) {
      failures.push(`parallelism ${parallelism}: ${(err as Error).message}`);
      ctx.progress(`artifacts, parallelism ${parallelism}: failed: ${(err as Error).message}`);
    } finally {
      await worker?.stop();
    }
  }

  const rows: Row[] = [];
  const notes: string[] = [];
  if (samples.many!.length + samples.small!.length === 0) throw new Error(`no parallelism could be measured: ${failures.join('; ')}`);
  for (const c of all) {
    const byP = parallelisms.filter((p) => samples[c.name]!.some((x) => x.parallelism === p)).map((p) => {
      const s = samples[c.name]!.filter((x) => x.parallelism === p);
      const rawMs = median(s.map((x) => x.rawMs));
      const workerMs = median(s.map((x) => x.workerMs));
      const collect = s.map((x) => x.collectMs).filter((x): x is number => x !== undefined);
      return { p, rawMs, rawUploadMs: median(s.map((x) => x.rawUploadMs)), workerMs, collectMs: collect.length ? median(collect) : undefined, peak: Math.max(...s.map((x) => x.peakRssMb)), cpuMs: median(s.map((x) => x.cpuMs)), rawCpuMs: median(s.map((x) => x.rawCpuMs)) };
    });
    const best = byP.reduce((a, b) => (b.workerMs < a.workerMs ? b : a));
    for (const x of byP) {
      const isDefault = x.p === DEFAULT_UPLOAD_PARALLELISM;
      const ratio = x.rawMs / x.workerMs;
      rows.push({
        benchmark: 'Artifact upload', figure: `${c.title}, parallelism ${x.p}${isDefault ? ' (default)' : ''}: container exit → resolved`,
        worker: round(rate(c, x.workerMs), 0), floor: round(rate(c, x.rawMs), 0), unit: c.unit,
        comparison: `${round(ratio * 100, 0)} % of raw archive → artifact upload at parallelism ${x.p}` +
          (x.collectMs !== undefined ? `; upload stage alone ${round((x.rawUploadMs / x.collectMs) * 100, 0)} %` : ''),
        ...(isDefault ? { target: '≥ 90 % of raw at the same parallelism', met: ratio >= 0.9 } : {}),
      });
    }
    const peak = Math.max(...byP.map((x) => x.peak));
    rows.push({ benchmark: 'Artifact upload', figure: `worker peak RSS, ${c.title}`, worker: round(peak, 0), unit: 'MB', target: '≤ 150 MB', met: peak <= 150 });
    notes.push(`${c.title}: fastest worker at parallelism ${best.p}; CPU by parallelism, worker (the whole task, submit → resolved) / raw client (the uploads): ${byP.map((x) => `${x.p}: ${round(x.cpuMs, 0)} / ${round(x.rawCpuMs, 0)} ms`).join(', ')}; ` +
      `worker's upload stage (containerExited → artifactsCollected) by parallelism: ${byP.map((x) => `${x.p}: ${x.collectMs === undefined ? '?' : round(x.collectMs, 0)} ms`).join(', ')}; raw upload stage: ${byP.map((x) => `${x.p}: ${round(x.rawUploadMs, 0)} ms`).join(', ')}; ` +
      `container exit → done, worker (to resolved) / raw (to its last finishArtifact): ${byP.map((x) => `${x.p}: ${round(x.workerMs, 0)} / ${round(x.rawMs, 0)} ms`).join(', ')}.`);
  }
  if (failures.length) notes.push(`Not measured: ${failures.join('; ')}.`);
  notes.push('The floor for many artifacts (bench/lib/raw-artifacts.ts) is a task run of its own on the same deployment, on a container of its own running the same command: from that container\'s exit (engine die event; the engine then unmounts the container\'s filesystem, syncing what it wrote, before `docker wait` returns) the archive API streamed into createArtifact → createUpload → PUT → finishUpload → finishArtifact, at the same parallelism, hashing (sha256) what it sends as every downloadable object needs, without retries or a task log.');
  return { rows, notes, details: { parallelisms, samples } };
}
