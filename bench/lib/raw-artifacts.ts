// The floor of a task's artifact uploads: what a client with nothing else to do does to put a
// stopped container's files into a task run as artifacts, against the same deployment as the
// worker and with the same parallelism. A run of its own (createTask + claimWork with the root
// credentials; its queue calls then signed with the claim's temporary credentials, as the
// worker's are, so the services do the same work for both), then per file: createArtifact (object) -> createUpload (the data inline below
// 8 KiB, as the worker does; else a putUrl) -> one HTTP PUT streamed from the archive ->
// finishUpload -> finishArtifact. The archive API is read as the worker reads it: one archive
// per file artifact, one per directory whose entries are fanned out (files up to 1 MiB read
// into memory, bigger ones streamed while the archive waits). Each object gets its sha256 in
// finishUpload, hashed on the way as the bytes go out: the schema leaves `hashes` optional, but
// downloaders must find at least one acceptable hash (sha256 or sha512; taskcluster-client's
// download() throws "No acceptable hash algorithm found" without one), so a client that skips
// it uploads artifacts nobody can download. sha256 is the cheaper of the two. No retries, no
// log.
// API calls keep their connections, as the worker's do.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import PQueue from 'p-queue';
import tarStream from 'tar-stream';
import taskcluster from 'taskcluster-client';
import type Dockerode from 'dockerode';
import { putBody } from './object-put.ts';
import type { RootCredentials } from './worker-process.ts';
import { shareKeepAliveConnections } from '../../lib/queue/taskcluster.ts';
import { taskDefinition } from './tasks.ts';

export interface RawArtifact { name: string; path: string; type: 'file' | 'directory' }

const INLINE_MAX = 8192;

// Kept connections for the API calls, as the worker's (lib/queue/taskcluster.ts).
shareKeepAliveConnections();
const SMALL_FILE_MAX = 1024 * 1024;

export interface RawRun {
  taskId: string; runId: number; expires: string; queue: any;
  /** The claim's temporary credentials. */
  credentials: { clientId: string; accessToken: string; certificate?: string };
  finish(): Promise<void>;
}

/** A task run of its own, claimed with the root credentials. */
export async function rawRun(credentials: RootCredentials, name: string): Promise<RawRun> {
  const queue = new taskcluster.Queue({ rootUrl: credentials.rootUrl, credentials: { clientId: credentials.clientId, accessToken: credentials.accessToken } });
  const taskQueueId = `bench/raw-${taskcluster.slugid().slice(0, 8).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
  const taskId = taskcluster.slugid() as string;
  const task = taskDefinition(taskQueueId, {}, name);
  await queue.createTask(taskId, task);
  const claimed = await queue.claimWork(taskQueueId, { workerGroup: 'bench', workerId: 'raw', tasks: 1 }) as { tasks: unknown[] };
  if (claimed.tasks.length !== 1) throw new Error('the raw run could not claim its task');
  const claim = claimed.tasks[0]! as { runId: number; credentials: { clientId: string; accessToken: string; certificate?: string } };
  const runId = claim.runId;
  const runQueue = new taskcluster.Queue({ rootUrl: credentials.rootUrl, credentials: claim.credentials });
  return { taskId, runId, expires: String(task.expires), queue: runQueue, credentials: claim.credentials, finish: async () => { await runQueue.reportCompleted(taskId, runId); } };
}

/** One file's artifact upload, as the floor does it. */
export async function uploadOne(credentials: RootCredentials, run: RawRun, name: string, size: number, body: Readable | Buffer): Promise<void> {
  const contentType = 'application/octet-stream';
  const created = await run.queue.createArtifact(run.taskId, run.runId, name, {
    storageType: 'object', expires: run.expires, contentType,
  }) as { name: string; projectId: string; uploadId: string; expires: string; credentials: { clientId: string; accessToken: string; certificate?: string } };
  const object = new taskcluster.Object({ rootUrl: credentials.rootUrl, credentials: created.credentials });
  const { projectId, uploadId } = created;
  const hash = createHash('sha256');
  if (Buffer.isBuffer(body)) hash.update(body);
  if (Buffer.isBuffer(body) && size < INLINE_MAX) {
    await object.createUpload(created.name, {
      projectId, uploadId, expires: created.expires, proposedUploadMethods: { dataInline: { contentType, objectData: body.toString('base64') } },
    });
  } else {
    const offer = await object.createUpload(created.name, {
      projectId, uploadId, expires: created.expires, proposedUploadMethods: { putUrl: { contentType, contentLength: size } },
    }) as { uploadMethod: { putUrl: { url: string; headers: Record<string, string> } } };
    const stream = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    // In the same tick as putBody's pipe: a 'data' listener alone sets the stream flowing.
    if (!Buffer.isBuffer(body)) body.on('data', (chunk: Buffer) => hash.update(chunk));
    await putBody(offer.uploadMethod.putUrl.url, offer.uploadMethod.putUrl.headers, stream);
  }
  await object.finishUpload(created.name, { projectId, uploadId, hashes: { sha256: hash.digest('hex') } });
  await run.queue.finishArtifact(run.taskId, run.runId, name, { uploadId });
}

async function readAll(entry: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Wall time and this process's CPU time (user + system) of one collection, and when it ended (ms since the epoch). */
export interface RawCollectTimes { ms: number; cpuMs: number; endedAt: number }

/**
 * Uploads the artifacts out of the stopped container into `run` (claimed beforehand, as the
 * worker's run is claimed before its container runs), `parallelism` uploads at a time.
 */
export async function rawCollect(engine: Dockerode, containerId: string, artifacts: RawArtifact[], credentials: RootCredentials, parallelism: number, run: RawRun): Promise<RawCollectTimes> {
  const container = engine.getContainer(containerId);
  const uploads = new PQueue({ concurrency: parallelism });
  const readers = new PQueue({ concurrency: parallelism });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const collect = async (artifact: RawArtifact) => {
    const tar = await container.getArchive({ path: artifact.path }) as unknown as Readable;
    const extract = tarStream.extract();
    const piping = pipeline(tar, extract);
    piping.catch(() => undefined); // awaited below; the loop's own error comes first
    const pending: Promise<void>[] = [];
    for await (const entry of extract) {
      const stream = entry as unknown as Readable;
      if (entry.header.type !== 'file') { stream.resume(); continue; }
      const size = entry.header.size ?? 0;
      const name = artifact.type === 'file' ? artifact.name : `${artifact.name}/${entry.header.name.split('/').slice(1).join('/')}`;
      if (artifact.type === 'directory' && size <= SMALL_FILE_MAX) {
        await uploads.onSizeLessThan(1);
        const bytes = await readAll(stream);
        pending.push(uploads.add(() => uploadOne(credentials, run, name, size, bytes)));
      } else {
        await uploads.add(() => uploadOne(credentials, run, name, size, stream));
      }
    }
    await piping;
    await Promise.all(pending);
  };
  await Promise.all(artifacts.map((a) => readers.add(() => collect(a))));
  const ms = performance.now() - t0;
  const endedAt = Date.now();
  const cpu = process.cpuUsage(cpu0);
  await run.finish();
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, endedAt };
}
