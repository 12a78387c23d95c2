// Artifact image: a task whose image is a `task-image` artifact, a `docker save` of N MiB
// (default 200; random bytes, so zstd keeps the size) compressed as .tar.zst and published by a
// producer task on the same deployment. Time from createTask to the task's container running
// (engine 'start' event), against the raw pipeline from the same file on disk:
// `zstd -d -c image.tar.zst | docker load`, then create + start of the loaded image. A second
// task using the same artifact must neither download nor load (worker events 'image download
// started' / 'image loaded' absent, 'image reused' present); its time is set against create +
// start of an image already present. The loaded images are removed between repeats.
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import taskcluster from 'taskcluster-client';
import type Dockerode from 'dockerode';
import { ArtifactPublisher } from '../lib/artifacts/upload.ts';
import { localRepository } from '../lib/images/local-name.ts';
import type { BenchContext } from './lib/context.ts';
import { readIo } from './lib/proc.ts';
import { rawCreateOptions } from './lib/raw-engine.ts';
import type { BenchmarkResult } from './lib/report.ts';
import { MIB, median, round } from './lib/stats.ts';
import { describeStages, stageMarks, stageTimings, submitTask, taskLog, waitResolved } from './lib/tasks.ts';
import { WorkerProcess, type RootCredentials } from './lib/worker-process.ts';

const run = promisify(execFile);
const ARTIFACT = 'public/bench/image.tar.zst';

/** Commits taskenv_pass plus `bytes` of random data as a new image, saves it as .tar.zst. */
async function buildImageFile(engine: Dockerode, baseImage: string, bytes: number, dir: string): Promise<{ file: string; size: number; name: string }> {
  const repo = `bench-task-image-${Date.now().toString(36)}`;
  const name = `${repo}:latest`;
  const mib = Math.ceil(bytes / MIB);
  const container = await engine.createContainer(rawCreateOptions(baseImage, ['sh', '-c', `dd if=/dev/urandom of=/blob bs=1048576 count=${mib} 2>/dev/null`]));
  try {
    await container.start();
    await container.wait();
    await container.commit({ repo, tag: 'latest' });
  } finally {
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
  const file = path.join(dir, 'image.tar.zst');
  try {
    const saved = await engine.getImage(name).get() as unknown as Readable;
    const zstd = spawn('zstd', ['-q', '-3', '-T0', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
    await Promise.all([pipeline(saved, zstd.stdin), pipeline(zstd.stdout, createWriteStream(file))]);
  } finally {
    await engine.getImage(name).remove({ force: true }).catch(() => undefined);
  }
  return { file, size: statSync(file).size, name };
}

/** A completed producer task (claimed by the bench itself) carrying the image as an object artifact. */
async function publishProducer(credentials: RootCredentials, file: string): Promise<string> {
  const queue = new taskcluster.Queue({ rootUrl: credentials.rootUrl, credentials });
  const taskQueueId = `bench/producer-${Date.now().toString(36)}`;
  const taskId = taskcluster.slugid() as string;
  await queue.createTask(taskId, {
    taskQueueId, created: new Date().toISOString(), deadline: taskcluster.fromNow('2 hours').toISOString(),
    metadata: { name: 'image producer', description: 'make bench', owner: 'bench@localhost.localdomain', source: 'https://localhost/bench' },
    payload: {},
  });
  const { tasks } = await queue.claimWork(taskQueueId, { workerGroup: 'bench', workerId: 'producer', tasks: 1 }) as
    { tasks: { runId: number; credentials: { clientId: string; accessToken: string; certificate?: string } }[] };
  const claim = tasks[0];
  if (!claim) throw new Error('could not claim the producer task');
  const publisher = new ArtifactPublisher({ rootUrl: credentials.rootUrl, taskId, runId: claim.runId, credentials: () => claim.credentials });
  await publisher.uploadFile(file, { name: ARTIFACT, expires: taskcluster.fromNow('1 day') });
  await queue.reportCompleted(taskId, claim.runId);
  return taskId;
}

/** `zstd -d | docker load`, then create + start: ms to a running container, and each part. */
async function rawPipeline(engine: Dockerode, file: string): Promise<{ ms: number; loadMs: number; runMs: number; image: string }> {
  const t0 = performance.now();
  const { stdout } = await run('sh', ['-c', `zstd -d -q -c "$1" | docker load`, 'sh', file], { maxBuffer: 1 << 20 });
  const image = /Loaded image: (\S+)/.exec(stdout)?.[1] ?? /Loaded image ID: (\S+)/.exec(stdout)?.[1];
  if (!image) throw new Error(`docker load printed no image: ${stdout}`);
  const t1 = performance.now();
  const runMs = await rawStart(engine, image);
  return { ms: t1 - t0 + runMs, loadMs: t1 - t0, runMs, image };
}

/**
 * The same with the download the worker has to do: `curl <storage URL> | zstd -d | docker
 * load` from the deployment's object service, then create + start.
 */
async function rawDownloadPipeline(engine: Dockerode, credentials: RootCredentials, producer: string): Promise<{ ms: number; image: string }> {
  const queue = new taskcluster.Queue({ rootUrl: credentials.rootUrl, credentials });
  const t0 = performance.now();
  const content = await queue.artifact(producer, 0, ARTIFACT) as { name: string; credentials: RootCredentials };
  const object = new taskcluster.Object({ rootUrl: credentials.rootUrl, credentials: content.credentials });
  const { url } = await object.startDownload(content.name, { acceptDownloadMethods: { simple: true } }) as { url: string };
  const { stdout } = await run('sh', ['-c', `curl -sfL "$1" | zstd -d -q -c | docker load`, 'sh', url], { maxBuffer: 1 << 20 });
  const image = /Loaded image: (\S+)/.exec(stdout)?.[1] ?? /Loaded image ID: (\S+)/.exec(stdout)?.[1];
  if (!image) throw new Error(`docker load printed no image: ${stdout}`);
  const runMs = await rawStart(engine, image);
  return { ms: performance.now() - t0 + runMs, image };
}

/** create + start of a present image (the container is removed afterwards, not timed). */
async function rawStart(engine: Dockerode, image: string): Promise<number> {
  const t0 = performance.now();
  const container = await engine.createContainer(rawCreateOptions(image, ['true']));
  await container.start();
  const ms = performance.now() - t0;
  await container.wait();
  await container.remove({ force: true, v: true });
  return ms;
}

interface UseSample { stages?: Record<string, number>; ms: number; downloaded: boolean; loaded: boolean; reused: boolean; loadEventMs?: number; readMb?: number }

export async function artifactImage(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options, engine } = ctx;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-image-'));
  const worker = await WorkerProcess.start({ name: 'image', capacity: 1, deployment: options.deployment, cpuProfDir: ctx.profileDir('image'), keepStateDir: options.keep });
  const first: UseSample[] = [];
  const second: UseSample[] = [];
  const raw: Array<{ ms: number; loadMs: number; runMs: number }> = [];
  const rawPresent: number[] = [];
  const rawDownload: number[] = [];
  let size = 0;
  const removeImages: string[] = [];
  let repository = '';
  try {
    ctx.progress(`image: building a ${Math.ceil(options.imageBytes / MIB)} MiB image and publishing it`);
    const built = await buildImageFile(engine, options.image, options.imageBytes, dir);
    size = built.size;
    const producer = await publishProducer(worker.credentials, built.file);
    const use = async (): Promise<UseSample> => {
      const io0 = readIo(worker.pid);
      const submitted = await submitTask(worker, { image: { type: 'task-image', taskId: producer, path: ARTIFACT }, command: ['true'], maxRunTime: 600 }, 'task-image');
      const c = await ctx.events.when(submitted.taskId, 'start', 600_000);
      await waitResolved(worker, submitted.taskId, 600_000).catch(async (err: Error) => { throw new Error(`${err.message}\n${(await taskLog(worker, submitted.taskId).catch(() => '')).slice(-1500)}`); });
      const io1 = readIo(worker.pid);
      const has = (message: string) => worker.command.events.find((e) => e.message === message && e.taskId === submitted.taskId);
      return {
        stages: await stageTimings(worker, submitted.taskId),
        ms: c.start! - submitted.submittedAt, downloaded: !!has('image download started'), loaded: !!has('image loaded'), reused: !!has('image reused'),
        loadEventMs: has('image loaded')?.ms as number | undefined,
        readMb: io0 && io1 ? (io1.rchar - io0.rchar) / MIB : undefined,
      };
    };
    for (let r = 0; r < options.repeats; r++) {
      const p = await rawPipeline(engine, built.file);
      raw.push(p);
      rawPresent.push(await rawStart(engine, p.image));
      await engine.getImage(p.image).remove({ force: true }).catch(() => undefined);
      const d = await rawDownloadPipeline(engine, worker.credentials, producer);
      rawDownload.push(d.ms);
      await engine.getImage(d.image).remove({ force: true }).catch(() => undefined);

      const f = await use();
      const s = await use();
      first.push(f);
      second.push(s);
      // Drop what the worker loaded so the next repeat's first use loads again.
      repository = localRepository({ taskId: producer, path: ARTIFACT });
      for (const image of await engine.listImages()) {
        for (const tag of image.RepoTags ?? []) if (tag.startsWith(`${repository}:`)) removeImages.push(tag);
      }
      while (removeImages.length) await engine.getImage(removeImages.pop()!).remove({ force: true }).catch(() => undefined);
      ctx.progress(`image: raw ${round(p.ms, 0)} ms (load ${round(p.loadMs, 0)}), worker first use ${round(f.ms, 0)} ms, second ${round(s.ms, 0)} ms (downloaded: ${s.downloaded}, loaded: ${s.loaded})`);
    }
  } finally {
    await worker.stop();
    if (repository) {
      for (const image of await engine.listImages()) {
        for (const tag of image.RepoTags ?? []) if (tag.startsWith(`${repository}:`)) await engine.getImage(tag).remove({ force: true }).catch(() => undefined);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const rawMs = median(raw.map((r) => r.ms));
  const firstMs = median(first.map((s) => s.ms));
  const secondMs = median(second.map((s) => s.ms));
  const presentMs = median(rawPresent);
  const secondClean = second.every((s) => !s.downloaded && !s.loaded && s.reused);
  const sizeMb = `${round(size / MIB, 0)} MiB`;
  return {
    name: 'image',
    title: 'Artifact image',
    rows: [
      { benchmark: 'Artifact image', figure: `${sizeMb} task-image .tar.zst: createTask → container running`, worker: round(firstMs, 0), floor: round(rawMs, 0), unit: 'ms',
        comparison: `${round(firstMs / rawMs, 2)}× \`zstd -d | docker load\` + run`, target: '≤ 1.2×', met: firstMs / rawMs <= 1.2 },
      { benchmark: 'Artifact image', figure: 'the same, against a raw pipeline that downloads too', worker: round(firstMs, 0), floor: round(median(rawDownload), 0), unit: 'ms',
        comparison: `${round(firstMs / median(rawDownload), 2)}× \`curl | zstd -d | docker load\` + run (same storage)` },
      { benchmark: 'Artifact image', figure: 'second use: createTask → container running', worker: round(secondMs, 0), floor: round(presentMs, 0), unit: 'ms',
        comparison: `+${round(secondMs - presentMs, 0)} ms over create + start; ${secondClean ? 'no download, no load' : 'DOWNLOADED OR LOADED AGAIN'}`,
        target: 'no download, no load', met: secondClean },
    ],
    details: { artifactBytes: size, raw, rawPresentStartMs: rawPresent, rawDownloadMs: rawDownload, first, second },
    notes: [
      `Worker stage marks, first use (median ms since the claim): ${describeStages(stageMarks(first.map((s) => s.stages)))}; second use: ${describeStages(stageMarks(second.map((s) => s.stages)))}.`,
      `Raw pipeline: load ${round(median(raw.map((r) => r.loadMs)), 0)} ms + create/start ${round(median(raw.map((r) => r.runMs)), 0)} ms. ` +
        `Worker first use: its 'image loaded' event says ${round(median(first.flatMap((s) => s.loadEventMs === undefined ? [] : [s.loadEventMs])), 0)} ms for download + load; ` +
        `the worker process read ${round(median(first.flatMap((s) => s.readMb === undefined ? [] : [s.readMb])), 0)} MB (first use) and ${round(median(second.flatMap((s) => s.readMb === undefined ? [] : [s.readMb])), 1)} MB (second use) through read syscalls` +
        `${options.deployment === 'embedded' ? ' (the embedded object service serving the download is in the same process)' : ''}.`,
    ],
  };
}
