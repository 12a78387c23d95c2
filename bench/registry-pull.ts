// Registry pull: a task whose image (default 100 MiB) must be pulled from the local test
// registry (`make registry`, the open one on 127.0.0.1:5480). Time from createTask to the task's
// container running (the engine's 'start' event), against the raw floor: pull (the engine's
// createImage stream read to its end, as `docker pull` does) + create + start. Repeats
// alternate which goes first; the image is removed from the engine before each pull.
//
// The image is the bench task image plus one layer of N MiB of AES-CTR keystream with a fixed
// key (incompressible, and the same bytes every run: the registry stores the layer once, however
// often the bench pushes it). It is committed from a container that wrote the data, pushed once
// per run under a tag of its own, and every local copy is removed; the run's manifest is deleted
// from the registry at the end.
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInterface } from 'node:readline';
import type Dockerode from 'dockerode';
import type { BenchContext } from './lib/context.ts';
import { RAW_LABEL, rawCreateOptions, removeContainer } from './lib/raw-engine.ts';
import { readCpuMs } from './lib/proc.ts';
import type { BenchmarkResult } from './lib/report.ts';
import { MIB, median, round } from './lib/stats.ts';
import { describeStages, stageMarks, stageTimings, submitTask, taskLog, waitResolved } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';

const REPOSITORY = 'bench-registry-pull';
const MANIFEST_TYPES = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json';

/** `bytes` of AES-256-CTR keystream under an all-zero key: looks random, the same every time. */
function fixedRandomBytes(bytes: number): Readable {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32), Buffer.alloc(16));
  const zeros = Buffer.alloc(MIB);
  let left = bytes;
  return Readable.from((function* () {
    while (left > 0) {
      const n = Math.min(left, zeros.length);
      left -= n;
      yield cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    }
  })());
}

/** Runs `docker run -i` of `image` writing stdin to /blob (mtime 0), commits it as `name`. */
async function buildImage(engine: Dockerode, baseImage: string, bytes: number, name: string): Promise<void> {
  const containerName = `bench-registry-pull-${process.pid}`;
  const child = spawn('docker', ['run', '-i', '--name', containerName, '--label', `${RAW_LABEL}=${process.pid}`, baseImage,
    'sh', '-c', 'cat > /blob && touch -d @0 /blob'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    await pipeline(fixedRandomBytes(bytes), child.stdin);
    const code = await exited;
    if (code !== 0) throw new Error(`docker run (writing the image's data) exited ${code}: ${stderr.trim()}`);
    const colon = name.lastIndexOf(':');
    await engine.getContainer(containerName).commit({ repo: name.slice(0, colon), tag: name.slice(colon + 1) });
  } finally {
    await removeContainer(engine.getContainer(containerName));
  }
}

/** Reads a createImage / push progress stream to its end; an error event throws. */
async function drainProgress(stream: Readable, what: string): Promise<void> {
  for await (const line of createInterface({ input: stream })) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as { error?: string };
    if (event.error) throw new Error(`${what}: ${event.error}`);
  }
}

async function push(engine: Dockerode, name: string): Promise<void> {
  // The daemon wants an X-Registry-Auth header even for an open registry: an empty one.
  const stream = await engine.getImage(name).push({ authconfig: {} }) as unknown as Readable;
  await drainProgress(stream, `push ${name}`);
}

/** The raw floor: pull, create, start; ms to the container running, and the pull's part. */
async function rawPullAndStart(engine: Dockerode, name: string): Promise<{ ms: number; pullMs: number }> {
  const colon = name.lastIndexOf(':');
  const t0 = performance.now();
  const stream = await engine.createImage({ fromImage: name.slice(0, colon), tag: name.slice(colon + 1) }) as unknown as Readable;
  await drainProgress(stream, `pull ${name}`);
  const t1 = performance.now();
  const container = await engine.createContainer(rawCreateOptions(name, ['true']));
  try {
    await container.start();
    const ms = performance.now() - t0;
    await container.wait();
    return { ms, pullMs: t1 - t0 };
  } finally {
    await removeContainer(container);
  }
}

async function removeImage(engine: Dockerode, name: string): Promise<void> {
  await engine.getImage(name).remove({ force: true }).catch((err: { statusCode?: number }) => {
    if (err.statusCode !== 404) throw err;
  });
}

async function registryAnswers(registry: string): Promise<boolean> {
  try {
    return (await fetch(`http://${registry}/v2/`, { signal: AbortSignal.timeout(5000) })).ok;
  } catch {
    return false;
  }
}

async function deleteManifest(registry: string, tag: string): Promise<void> {
  const head = await fetch(`http://${registry}/v2/${REPOSITORY}/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_TYPES } });
  const digest = head.headers.get('docker-content-digest');
  if (head.ok && digest) await fetch(`http://${registry}/v2/${REPOSITORY}/manifests/${digest}`, { method: 'DELETE' });
}

interface WorkerSample { ms: number; pulls: number; stages?: Record<string, number>; workerCpuMs: number }

export async function registryPull(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options, engine } = ctx;
  const registry = options.registry;
  if (!await registryAnswers(registry)) throw new Error(`no registry answers on http://${registry}/v2/; run 'make registry' first (or set BENCH_REGISTRY)`);
  const mib = Math.ceil(options.pullBytes / MIB);
  const tag = `${mib}mib-${process.pid}`;
  const name = `${registry}/${REPOSITORY}:${tag}`;
  const raw: Array<{ ms: number; pullMs: number }> = [];
  const workerSamples: WorkerSample[] = [];
  let pushed = false;
  const worker = await WorkerProcess.start({ name: 'pull', capacity: 1, deployment: options.deployment, cpuProfDir: ctx.profileDir('pull'), keepStateDir: options.keep });
  try {
    ctx.progress(`pull: building a ${mib} MiB image and pushing it to ${registry}`);
    await buildImage(engine, options.image, mib * MIB, name);
    try {
      await push(engine, name);
      pushed = true;
    } finally {
      await removeImage(engine, name); // the committed copy: each pull below fetches the layer
    }
    const runWorker = async (): Promise<WorkerSample> => {
      const cpu0 = readCpuMs(worker.pid);
      const submitted = await submitTask(worker, { image: name, command: ['true'], maxRunTime: 600 }, 'registry pull');
      const started = await ctx.events.when(submitted.taskId, 'start', 600_000);
      await waitResolved(worker, submitted.taskId, 600_000).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${(await taskLog(worker, submitted.taskId).catch(() => '')).slice(-1500)}`);
      });
      const log = await taskLog(worker, submitted.taskId);
      return { ms: started.start! - submitted.submittedAt, pulls: (log.match(/Pulling image /g) ?? []).length,
        stages: await stageTimings(worker, submitted.taskId), workerCpuMs: readCpuMs(worker.pid) - cpu0 };
    };
    // Warm-up: the worker's first task pays for lazy loading that later tasks do not.
    await runWorker();
    await removeImage(engine, name);
    for (let r = 0; r < options.repeats; r++) {
      const order = r % 2 === 0 ? ['raw', 'worker'] : ['worker', 'raw'];
      for (const which of order) {
        if (which === 'raw') raw.push(await rawPullAndStart(engine, name));
        else workerSamples.push(await runWorker());
        await removeImage(engine, name);
      }
      ctx.progress(`pull: raw ${round(raw.at(-1)!.ms, 0)} ms (pull ${round(raw.at(-1)!.pullMs, 0)}), worker ${round(workerSamples.at(-1)!.ms, 0)} ms`);
    }
  } finally {
    await worker.stop();
    await removeImage(engine, name);
    if (pushed) await deleteManifest(registry, tag).catch(() => undefined);
  }
  const w = median(workerSamples.map((s) => s.ms));
  const floor = median(raw.map((s) => s.ms));
  const ratio = w / floor;
  return {
    name: 'pull',
    title: 'Registry pull',
    rows: [{
      benchmark: 'Registry pull', figure: `${mib} MiB image from the local registry: createTask → container running`, worker: round(w, 0), floor: round(floor, 0), unit: 'ms',
      comparison: `${round(ratio, 2)}× pull + create + start`, target: '≤ 1.1×', met: ratio <= 1.1,
    }],
    details: { registry, imageBytes: mib * MIB, raw, worker: workerSamples },
    notes: [
      `Raw: pull ${round(median(raw.map((s) => s.pullMs)), 0)} ms of ${round(floor, 0)} ms (medians of ${raw.length}). Worker stage marks (median ms since the claim): ${describeStages(stageMarks(workerSamples.map((s) => s.stages)))}; ` +
        `worker CPU per task ${round(median(workerSamples.map((s) => s.workerCpuMs)), 0)} ms; pull attempts per task ${median(workerSamples.map((s) => s.pulls))}.`,
    ],
  };
}
