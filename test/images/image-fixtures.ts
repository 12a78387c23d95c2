// Image tarballs for tests, made from the local test images: `docker save` (Docker's current
// format), compressed with gzip, zstd and lz4, a hand-made legacy one (no manifest.json, only
// `repositories`), one holding two images and a truncated one. Plus a producer task that
// publishes them as artifacts of a completed run, as a real build task would.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import taskcluster from 'taskcluster-client';
import { ArtifactPublisher, type StorageType } from '../../lib/artifacts/upload.ts';
import { TASKENV_FAIL, TASKENV_PASS, dockerSaveStream } from '../support/docker.ts';

export interface ImageFiles {
  dir: string;
  tar: string;
  gz: string;
  zst: string;
  lz4: string;
  legacy: string;
  twoImages: string;
  truncatedGz: string;
  /** The layers and config of a docker save, without manifest.json or repositories. */
  noManifest: string;
  remove(): void;
}

export function sha256File(file: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
}

async function save(images: string[], file: string): Promise<void> {
  execFileSync('sh', ['-c', `docker save ${images.join(' ')} > "${file}"`]);
}

/** Docker's legacy save format: the current one without manifest.json and the image config. */
async function legacyFrom(current: string, file: string): Promise<void> {
  await copyTarWithout(current, file, (name) => name === 'manifest.json' || /^[0-9a-f]{64}\.json$/.test(name));
}

/** A copy of the tar archive `source` without the entries `drop` picks. */
async function copyTarWithout(source: string, file: string, drop: (name: string) => boolean): Promise<void> {
  const extract = tarStream.extract();
  const pack = tarStream.pack();
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(file));
  const reading = pipeline(createReadStream(source), extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const name = entry.header.name.replace(/^\.\//, '');
    if (drop(name)) { entry.resume(); continue; }
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    await new Promise<void>((resolve, reject) => pack.entry(entry.header, Buffer.concat(chunks), (err) => (err ? reject(err) : resolve())));
  }
  await reading;
  pack.finalize();
  await writing;
}

export async function buildImageFiles(): Promise<ImageFiles> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'image-files-'));
  const f = (name: string) => path.join(dir, name);
  await save([TASKENV_PASS], f('image.tar'));
  await pipeline(createReadStream(f('image.tar')), zlib.createGzip(), createWriteStream(f('image.tar.gz')));
  await pipeline(createReadStream(f('image.tar')), zlib.createZstdCompress(), createWriteStream(f('image.tar.zst')));
  execFileSync('lz4', ['-q', '-f', f('image.tar'), f('image.tar.lz4')]);
  await legacyFrom(f('image.tar'), f('legacy.tar'));
  await save([TASKENV_PASS, TASKENV_FAIL], f('two-images.tar'));
  writeFileSync(f('truncated.tar.gz'), readFileSync(f('image.tar.gz')));
  truncateSync(f('truncated.tar.gz'), Math.floor(statSync(f('image.tar.gz')).size / 2));
  await copyTarWithout(f('image.tar'), f('no-manifest.tar'), (name) => name === 'manifest.json' || name === 'repositories');
  return {
    dir, tar: f('image.tar'), gz: f('image.tar.gz'), zst: f('image.tar.zst'), lz4: f('image.tar.lz4'),
    legacy: f('legacy.tar'), twoImages: f('two-images.tar'), truncatedGz: f('truncated.tar.gz'), noManifest: f('no-manifest.tar'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A file to upload, or (with `reference`) a reference artifact redirecting to that URL. */
export interface Upload { name: string; file?: string; storageType?: StorageType; reference?: string }

/**
 * Creates a task in a queue of its own, claims it with the root client, uploads `uploads` as
 * artifacts of run 0 with the claim's credentials, and reports it completed. Returns its taskId.
 * With `routes` (e.g. `index.<namespace>`), the queue's completion indexes it as a real build would.
 */
export async function publishProducerTask(rootUrl: string, credentials: { clientId: string; accessToken: string }, uploads: Upload[], options: { routes?: string[] } = {}): Promise<string> {
  const queue = new taskcluster.Queue({ rootUrl, credentials });
  const taskQueueId = `test-prov/producer-${randomBytes(4).toString('hex')}`;
  const taskId = taskcluster.slugid();
  await queue.createTask(taskId, {
    taskQueueId, created: new Date().toISOString(), deadline: taskcluster.fromNow('1 hour').toISOString(),
    metadata: { name: 'image producer', description: 'publishes image tarballs', owner: 'test@localhost.localdomain', source: 'https://localhost/test' },
    payload: {},
    ...(options.routes ? { routes: options.routes } : {}),
  });
  const { tasks } = await queue.claimWork(taskQueueId, { workerGroup: 'producers', workerId: 'producer-1', tasks: 1 }) as
    { tasks: { runId: number; credentials: { clientId: string; accessToken: string; certificate?: string } }[] };
  const claim = tasks[0];
  if (!claim) throw new Error('could not claim the producer task');
  const expires = taskcluster.fromNow('1 day');
  for (const upload of uploads) {
    const publisher = new ArtifactPublisher({ rootUrl, taskId, runId: claim.runId, credentials: () => claim.credentials, storageType: upload.storageType ?? 'object' });
    if (upload.reference) await publisher.createReferenceArtifact(upload.name, upload.reference, expires, 'application/x-tar');
    else await publisher.uploadFile(upload.file!, { name: upload.name, expires });
  }
  await queue.reportCompleted(taskId, claim.runId);
  return taskId;
}
