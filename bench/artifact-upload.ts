// Artifact upload: a task leaves a file of N MiB (default 1 GiB), once compressible (text
// lines) and once random, declared as a file artifact. The worker's time runs from the
// container's exit (engine event) to 'task resolved': createArtifact, the archive read out of
// the container streamed into the object upload (sha256 on the way), finishArtifact, container
// removal, task log upload, report. Floors, with the same bytes from the same container command:
//   raw PUT          createUpload (root credentials) -> HTTP PUT to the putUrl -> finishUpload
//   raw archive      the engine's archive stream of the file, unpacked to a file
// Worker peak RSS (VmHWM reset at submit) over the whole task.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import type Dockerode from 'dockerode';
import type { BenchContext } from './lib/context.ts';
import { objectPutUrl, putBody, rawObjectPut } from './lib/object-put.ts';
import type { RootCredentials } from './lib/worker-process.ts';
import { MemorySampler, readCpuMs } from './lib/proc.ts';
import { rawCreateOptions } from './lib/raw-engine.ts';
import type { BenchmarkResult, Row } from './lib/report.ts';
import { MIB, mbPerSecond, median, round } from './lib/stats.ts';
import { describeStages, stageMarks, stageTimings, submitTask, waitResolved } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';
import { artifactParallel } from './artifact-parallel.ts';

const LINE = '0123456789'.repeat(8).slice(0, 79);

interface Kind { name: 'compressible' | 'random'; artifact: string; path: string; contentType: string; command: (mib: number) => string[] }

const KINDS: Kind[] = [
  { name: 'compressible', artifact: 'public/bench/big.txt', path: '/tmp/big.txt', contentType: 'text/plain; charset=utf-8',
    command: (mib) => ['sh', '-c', `yes ${LINE} | dd bs=1048576 count=${mib} iflag=fullblock of=/tmp/big.txt 2>/dev/null`] },
  { name: 'random', artifact: 'public/bench/big.bin', path: '/tmp/big.bin', contentType: 'application/octet-stream',
    command: (mib) => ['sh', '-c', `dd if=/dev/urandom bs=1048576 count=${mib} of=/tmp/big.bin 2>/dev/null`] },
];

interface WorkerSample { stages?: Record<string, number>; mbps: number; ms: number; peakRssMb: number; cpuMs: number }
interface RawSample { putMbps: number; archiveMbps: number; pipelineMbps: number; streamedMbps: number }

/** Runs the command in a raw container and unpacks `file` from its archive into `dir`. */
async function rawArchive(engine: Dockerode, image: string, command: string[], file: string, dir: string): Promise<{ filePath: string; ms: number }> {
  const container = await engine.createContainer(rawCreateOptions(image, command));
  try {
    await container.start();
    await container.wait();
    const filePath = path.join(dir, 'raw-artifact');
    const t0 = performance.now();
    const tar = await container.getArchive({ path: file }) as unknown as Readable;
    const extract = tarStream.extract();
    const piping = pipeline(tar, extract);
    for await (const entry of extract) await pipeline(entry, createWriteStream(filePath, { highWaterMark: 1 << 20 }));
    await piping;
    return { filePath, ms: performance.now() - t0 };
  } finally {
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
}

/**
 * The same work as the worker's with nothing of the worker's: the file streamed out of the
 * container's archive straight into a PUT to the object service (root credentials), hashed
 * (sha256) on the way for finishUpload, as any client must for its object to be downloadable
 * (bench/lib/raw-artifacts.ts).
 */
async function rawStreamedPut(engine: Dockerode, image: string, command: string[], file: string, credentials: RootCredentials, contentType: string): Promise<number> {
  const container = await engine.createContainer(rawCreateOptions(image, command));
  try {
    await container.start();
    await container.wait();
    const t0 = performance.now();
    const tar = await container.getArchive({ path: file }) as unknown as Readable;
    const extract = tarStream.extract();
    const piping = pipeline(tar, extract);
    for await (const entry of extract) {
      const put = await objectPutUrl(credentials, contentType, entry.header.size ?? 0);
      const hash = createHash('sha256');
      entry.on('data', (chunk: unknown) => { hash.update(chunk as Buffer); });
      await putBody(put.url, put.headers, entry as unknown as Readable);
      await put.finish(hash.digest('hex'));
    }
    await piping;
    return performance.now() - t0;
  } finally {
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
}

export async function artifactUpload(ctx: BenchContext): Promise<BenchmarkResult> {
  const single = ctx.options.artifactParts.includes('single') ? await singleArtifact(ctx) : { rows: [], notes: [], details: {} };
  const parallel = ctx.options.artifactParts.includes('parallel') ? await artifactParallel(ctx) : { rows: [], notes: [], details: {} };
  return {
    name: 'artifact', title: 'Artifact upload', rows: [...single.rows, ...parallel.rows], notes: [...single.notes, ...parallel.notes],
    details: { single: single.details, parallel: parallel.details },
  };
}

async function singleArtifact(ctx: BenchContext): Promise<{ rows: Row[]; notes: string[]; details: Record<string, unknown> }> {
  const { options, engine } = ctx;
  const mib = Math.ceil(options.artifactBytes / MIB);
  const bytes = mib * MIB;
  const worker = await WorkerProcess.start({ name: 'artifact', capacity: 1, deployment: options.deployment, cpuProfDir: ctx.profileDir('artifact'), keepStateDir: options.keep });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-artifact-'));
  const workerSamples: Record<string, WorkerSample[]> = { compressible: [], random: [] };
  const rawSamples: Record<string, RawSample[]> = { compressible: [], random: [] };
  try {
    for (let r = 0; r < options.repeats; r++) {
      for (const kind of KINDS) {
        const archived = await rawArchive(engine, options.image, kind.command(mib), kind.path, tmp);
        const put = await rawObjectPut(worker.credentials, archived.filePath, kind.contentType);
        rmSync(archived.filePath, { force: true });
        const streamedMs = await rawStreamedPut(engine, options.image, kind.command(mib), kind.path, worker.credentials, kind.contentType);
        rawSamples[kind.name]!.push({
          putMbps: mbPerSecond(bytes, put.putMs), archiveMbps: mbPerSecond(bytes, archived.ms),
          pipelineMbps: mbPerSecond(bytes, archived.ms + put.totalMs), streamedMbps: mbPerSecond(bytes, streamedMs),
        });

        const sampler = new MemorySampler(worker.pid).start();
        const cpu0 = readCpuMs(worker.pid);
        const submitted = await submitTask(worker, {
          image: options.image, command: kind.command(mib), maxRunTime: 3600,
          artifacts: { [kind.artifact]: { type: 'file', path: kind.path } },
        }, `artifact ${kind.name}`);
        const resolved = await waitResolved(worker, submitted.taskId, 3_600_000);
        const memory = sampler.stop();
        const c = await ctx.events.when(submitted.taskId, 'die', 1000);
        const ms = resolved.time - c.die!;
        workerSamples[kind.name]!.push({ stages: await stageTimings(worker, submitted.taskId), mbps: mbPerSecond(bytes, ms), ms, peakRssMb: memory.peakMb, cpuMs: readCpuMs(worker.pid) - cpu0 });
        ctx.progress(`artifact ${kind.name}: raw PUT ${round(mbPerSecond(bytes, put.putMs))} MB/s, raw archive ${round(mbPerSecond(bytes, archived.ms))} MB/s; ` +
          `worker ${round(mbPerSecond(bytes, ms))} MB/s, peak RSS ${round(memory.peakMb)} MB`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await worker.stop();
  }
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const kind of KINDS) {
    const w = workerSamples[kind.name]!;
    const raw = rawSamples[kind.name]!;
    const mbps = median(w.map((s) => s.mbps));
    const put = median(raw.map((s) => s.putMbps));
    const archive = median(raw.map((s) => s.archiveMbps));
    const pipelineMbps = median(raw.map((s) => s.pipelineMbps));
    const streamedMbps = median(raw.map((s) => s.streamedMbps));
    const peak = median(w.map((s) => s.peakRssMb));
    rows.push(
      { benchmark: 'Artifact upload', figure: `${mib} MiB ${kind.name} file: container exit → resolved`, worker: round(mbps, 0), floor: round(put, 0), unit: 'MB/s',
        comparison: `${round((mbps / put) * 100, 0)} % of raw PUT; ${round((mbps / streamedMbps) * 100, 0)} % of raw archive → PUT streamed (${round(streamedMbps, 0)} MB/s)`, target: '≥ 80 % of raw PUT', met: mbps / put >= 0.8 },
      { benchmark: 'Artifact upload', figure: `worker peak RSS, ${kind.name}`, worker: round(peak, 0), unit: 'MB', target: '≤ 150 MB', met: peak <= 150 },
    );
    notes.push(`${kind.name}: raw archive read (engine → tar → file) ${round(archive, 0)} MB/s; raw archive then PUT ${round(pipelineMbps, 0)} MB/s; raw archive streamed into a PUT ${round(streamedMbps, 0)} MB/s; worker CPU per task ${round(median(w.map((s) => s.cpuMs)), 0)} ms; worker stage marks (median ms since the claim): ${describeStages(stageMarks(w.map((s) => s.stages)))}.`);
  }
  notes.push(`The worker's time includes everything after the container exits: archive read streamed into the object upload (hashed on the way), container removal, task log upload and report. Deployment: ${options.deployment === 'separate' ? 'a separate `worker serve` process' : 'embedded in the worker process (the object service receiving the upload shares its process and RSS)'}.`);
  return { rows, notes, details: { bytes, workerSamples, rawSamples, deployment: options.deployment } };
}
