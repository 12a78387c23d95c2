// The ImageStore on its own, against the embedded deployment and the real engine: shared
// downloads and pulls, leases, the memory of loaded images across a restart (checked against
// the engine), and how storage trouble is met: 5xx and broken connections are retried, a 404
// fails at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import Transport from 'winston-transport';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import taskcluster from 'taskcluster-client';
import { Engine, type ImageInspectInfo } from '../../lib/docker/engine.ts';
import { ImageStore, type EnsureContext, type ImageStoreOptions } from '../../lib/images/image-store.ts';
import { localRepository } from '../../lib/images/local-name.ts';
import { prepareImage, ImageUnavailable } from '../../lib/task/prepare-image.ts';
import { VolumeCaches } from '../../lib/cache/volume-cache.ts';
import { authScopeExpander } from '../../lib/scopes/auth-expander.ts';
import { ImageStoreRecords } from '../../lib/cache/image-store-records.ts';
import { DiskBudget } from '../../lib/cache/disk-budget.ts';
import { importTinyImage } from '../cache/support.ts';
import { ImageFailure } from '../../lib/images/errors.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { DOCKER_SOCKET, dockerCli, testEngine, testWorkerId } from '../support/docker.ts';
import { OPEN_REGISTRY, OPEN_TASKENV_PASS, pushImage } from '../support/registry.ts';
import { buildImageFiles, publishProducerTask, sha256File, type ImageFiles } from './image-fixtures.ts';
import { TaskScopes } from '../../lib/scopes/task-scopes.ts';

interface Event { message: string; [k: string]: unknown }
class Capture extends Transport {
  readonly events: Event[] = [];
  override log(info: Event, next: () => void): void { this.events.push(info); next(); }
}

const engine = testEngine();
let embedded: EmbeddedDeployment;
let files: ImageFiles;
let stateDir: string;
let producer: string;
/** A second producer publishing the same bytes as the first under another task. */
let producer2: string;
let storage: Server;
let storageUrl: string;
/** What the flaky storage server does with each request, in order; then it serves the tarball. */
const plan: Array<'503' | '404' | '401' | '404-endless' | 'cut' | 'stall'> = [];
/** Resolved when a stalled download's connection was closed by the worker. */
let stalledClosed: Promise<void> | undefined;
let storageHits = 0;
/** Bytes of the huge error body sent when the connection closed. */
let hugeBodySent: Promise<number> | undefined;

before(async () => {
  files = await buildImageFiles();
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'image-store-'));
  embedded = await startEmbedded({ stateDir: path.join(stateDir, 'embedded'), port: 0, log: silentLog });
  const tar = readFileSync(files.tar);
  const gz = readFileSync(files.gz);
  storage = createServer((req, res) => {
    storageHits++;
    const next = plan.shift();
    if (next === '503') { res.writeHead(503).end('storage is busy'); return; }
    if (next === '404') { res.writeHead(404).end('NoSuchKey'); return; }
    if (next === '401') { res.writeHead(401).end('<Error><Code>AccessDenied</Code></Error>'); return; }
    if (next === '404-endless') {
      // An error answer with a huge body (256 MiB, sent as fast as it is read): the worker
      // must not read all of it.
      res.writeHead(404, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      let closed = false;
      hugeBodySent = new Promise((resolve) => res.on('close', () => { closed = true; resolve(sent); }));
      const more = () => {
        while (!closed && sent < 256 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) { res.once('drain', more); return; }
        }
        if (!closed) res.end();
      };
      more();
      return;
    }
    const body = req.url?.endsWith('.gz') ? gz : tar;
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/x-tar' });
    if (next === 'cut') { res.write(body.subarray(0, body.length / 2), () => res.socket?.destroy()); return; }
    if (next === 'stall') {
      stalledClosed = new Promise((r) => res.on('close', () => r()));
      res.write(tar.subarray(0, tar.length / 2));
      return;
    }
    res.end(tar);
  });
  await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
  storageUrl = `http://127.0.0.1:${(storage.address() as { port: number }).port}`;
  producer = await publishProducerTask(embedded.rootUrl, embedded.credentials, [
    { name: 'public/shared.tar.zst', file: files.zst },
    { name: 'public/restart.tar.gz', file: files.gz },
    { name: 'public/flaky-503.tar', reference: `${storageUrl}/flaky-503.tar` },
    { name: 'public/flaky-cut.tar', reference: `${storageUrl}/flaky-cut.tar` },
    { name: 'public/flaky-cut.tar.gz', reference: `${storageUrl}/flaky-cut.tar.gz` },
    { name: 'public/gone.tar', reference: `${storageUrl}/gone.tar` },
    { name: 'public/stall.tar', reference: `${storageUrl}/stall.tar` },
    { name: 'public/flaky-out.tar', reference: `${storageUrl}/flaky-out.tar` },
    { name: 'public/denied.tar', reference: `${storageUrl}/denied.tar` },
    { name: 'public/endless-404.tar', reference: `${storageUrl}/endless-404.tar` },
    { name: 'private/retry.tar', reference: `${storageUrl}/private-retry.tar` },
    { name: 'private/role.tar.gz', file: files.gz },
    { name: 'public/content-a.tar.zst', file: files.zst },
    { name: 'public/race.tar.gz', file: files.gz },
    { name: 'public/release.tar', file: files.tar },
    { name: 'public/expands.tar.gz', file: files.gz },
  ]);
  producer2 = await publishProducerTask(embedded.rootUrl, embedded.credentials, [
    { name: 'public/content-b.tar.zst', file: files.zst },
  ]);
});

after(async () => {
  storage?.close();
  await embedded?.close();
  const ours = [producer, producer2].filter(Boolean).map((p) => `task-image/${p.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}/`);
  for (const image of await engine.listImages()) {
    for (const tag of image.repoTags.filter((t) => ours.some((o) => t.startsWith(o)))) await engine.removeImage(tag);
  }
  for (const i of extraImages) { try { dockerCli(['rmi', '-f', i]); } catch { /* gone */ } }
  for (const d of extraDirs) rmSync(d, { recursive: true, force: true });
  files?.remove();
  rmSync(stateDir, { recursive: true, force: true });
});

const extraImages: string[] = [];
const extraDirs: string[] = [];

function store(capture = new Capture(), options: Partial<ImageStoreOptions> = {}): { images: ImageStore; capture: Capture } {
  const log = winston.createLogger({ level: 'debug', transports: [capture] });
  const images = new ImageStore({
    engine, log, stateDir, rootUrl: embedded.rootUrl, registries: {}, pullRetries: 0, pullBaseDelayMs: 10, downloadRetries: 2, downloadBaseDelayMs: 10,
    ...options,
  });
  return { images, capture };
}

/** A store on a state directory of its own (nothing remembered yet). */
function freshStore(options: Partial<ImageStoreOptions> = {}): { images: ImageStore; capture: Capture; dir: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'image-store-fresh-'));
  extraDirs.push(dir);
  return { ...store(new Capture(), { stateDir: dir, ...options }), dir };
}

function context(taskId: string, lines: string[] = [], signal = new AbortController().signal, extra: Partial<EnsureContext> = {}): EnsureContext {
  return {
    taskId, scopes: new TaskScopes([]), credentials: () => embedded.credentials, signal,
    taskLog: { info: (l) => lines.push(l), warn: (l) => lines.push(`warning: ${l}`) },
    ...extra,
  };
}

/** The real engine, with gates a test can close in front of a pull or an image inspect. */
class GatedEngine extends Engine {
  pullGate: Promise<void> | undefined;
  pullsEntered = 0;
  inspectGate: { name: string; gate: Promise<void>; reached: () => void } | undefined;
  override async pull(...args: Parameters<Engine['pull']>): Promise<void> {
    this.pullsEntered++;
    await this.pullGate;
    return super.pull(...args);
  }
  override async inspectImage(name: string): Promise<ImageInspectInfo | undefined> {
    const result = await super.inspectImage(name);
    const gated = this.inspectGate;
    if (gated && gated.name === name) {
      this.inspectGate = undefined;
      gated.reached();
      await gated.gate;
    }
    return result;
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => { open = r; });
  return { promise, open };
}

async function budgetFor(images: ImageStore, dir: string): Promise<DiskBudget> {
  const caches = await VolumeCaches.open({ dir: path.join(dir, 'caches'), workerPool: 'p/w', log: silentLog });
  return new DiskBudget({
    engine, workerId: testWorkerId('race'), caches, images: new ImageStoreRecords(images), log: silentLog,
    thresholdBytes: 1e18, imageExpirationSeconds: 0, dockerRootDir: async () => undefined,
  });
}

/** Whichever comes first: `promise` settles, or `ms` pass (then undefined). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise, sleep(ms).then(() => undefined)]);
}

const events = (c: Capture, message: string) => c.events.filter((e) => e.message === message);

test('concurrent tasks share one download; leases tell the collector what is in use', async () => {
  const { images, capture } = store();
  const ref = { kind: 'task-image' as const, taskId: producer, path: 'public/shared.tar.zst' };
  const lines: Record<string, string[]> = { 'task-a': [], 'task-b': [] };
  const [a, b] = await Promise.all([images.ensure(ref, context('task-a', lines['task-a'])), images.ensure(ref, context('task-b', lines['task-b']))]);
  assert.equal(events(capture, 'image download started').length, 1);
  assert.equal(a.imageId, b.imageId);
  assert.equal(a.artifactHash, sha256File(files.zst));
  assert.equal(b.artifactHash, a.artifactHash);
  const reused = events(capture, 'image reused');
  assert.equal(reused.length, 1);
  assert.equal(reused[0]!.shared, true);
  const joiner = lines[reused[0]!.taskId as string]!;
  assert.ok(joiner.some((l) => /which another task is downloading/.test(l)), joiner.join('\n'));
  assert.equal(images.inUse(a.imageId), true);
  a.release();
  a.release();
  assert.equal(images.inUse(a.imageId), true, 'task B still holds it');
  b.release();
  assert.equal(images.inUse(a.imageId), false);
  assert.ok((images.lastUsed(a.imageId) ?? 0) > Date.now() - 60_000);
});

test('the memory of loaded images survives a restart and is checked against the engine', async () => {
  const ref = { kind: 'task-image' as const, taskId: producer, path: 'public/restart.tar.gz' };
  const first = store();
  const loaded = await first.images.ensure(ref, context('t1'));
  assert.equal(events(first.capture, 'image loaded').length, 1);

  const second = store(); // a new worker process on the same state directory
  const again = await second.images.ensure(ref, context('t2'));
  assert.equal(events(second.capture, 'image download started').length, 0);
  assert.equal(events(second.capture, 'image reused')[0]?.digest, sha256File(files.gz));
  assert.equal(again.imageId, loaded.imageId);
  assert.ok(second.images.loadedArtifacts().some((r) => r.path === 'public/restart.tar.gz'));

  const [name] = (await engine.listImages()).flatMap((i) => i.repoTags).filter((t) => t === again.name);
  assert.ok(name, 'the image is there under its name');
  await engine.removeImage(name);
  const third = store();
  await third.images.ensure(ref, context('t3'));
  assert.equal(events(third.capture, 'image download started').length, 1, 'an image gone from the engine is downloaded again');
});

test('a 5xx from storage is retried with backoff', async () => {
  const { images, capture } = store();
  plan.push('503');
  const lines: string[] = [];
  const ready = await images.ensure({ kind: 'task-image', taskId: producer, path: 'public/flaky-503.tar' }, context('t', lines));
  assert.equal(ready.artifactHash, sha256File(files.tar));
  assert.ok(lines.some((l) => /HTTP 503.*Retrying in/.test(l)), lines.join('\n'));
  assert.equal(events(capture, 'image load failed')[0]?.kind, 'transient');
});

test('a connection that breaks mid-download is retried', async () => {
  const { images, capture } = store();
  plan.push('cut');
  const lines: string[] = [];
  await images.ensure({ kind: 'task-image', taskId: producer, path: 'public/flaky-cut.tar' }, context('t', lines));
  assert.ok(lines.some((l) => /broke off.*Retrying in/.test(l)), lines.join('\n'));
  assert.equal(events(capture, 'image loaded').length, 1);
});

test('a compressed download cut short fails as truncated when the expanded size is bounded too (the bound passes the decompressor\'s errors on, never waits)', async () => {
  const { images, capture } = freshStore({ maxExpandedBytes: async () => 1024 ** 3 });
  plan.push('cut');
  await assert.rejects(images.ensure({ kind: 'task-image', taskId: producer, path: 'public/flaky-cut.tar.gz' }, context('t')),
    /^ImageFailure: The image artifact public\/flaky-cut\.tar\.gz of task \S+ is corrupt or truncated: /);
  assert.equal(events(capture, 'image loaded').length, 0);
  plan.length = 0;
});

test('a 404 from storage fails at once with a plain message', async () => {
  const { images } = store();
  plan.push('404', '404', '404');
  const hits = storageHits;
  await assert.rejects(images.ensure({ kind: 'task-image', taskId: producer, path: 'public/gone.tar' }, context('t')), (err: Error) => {
    assert.ok(err instanceof ImageFailure);
    assert.equal(err.kind, 'not-found');
    assert.match(err.message, /^The data of the image artifact public\/gone\.tar of task \S+ was not found in storage \(HTTP 404: NoSuchKey\)\.$/);
    return true;
  });
  assert.equal(storageHits - hits, 1, 'not retried');
  plan.length = 0;
});

test('a task cancelled during the download stops it and loads nothing', async () => {
  const { images, capture } = store();
  plan.push('stall');
  const cancel = new AbortController();
  const lines: string[] = [];
  const ensuring = images.ensure({ kind: 'task-image', taskId: producer, path: 'public/stall.tar' }, context('t', lines, cancel.signal));
  while (!lines.some((l) => l.startsWith('Downloading image artifact'))) await new Promise((r) => setTimeout(r, 10));
  cancel.abort(new Error('task cancelled'));
  await assert.rejects(ensuring, /task cancelled/);
  await stalledClosed;
  assert.equal(events(capture, 'image loaded').length, 0);
  const repository = `task-image/${producer.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}/`;
  const stallTags = (await engine.listImages()).flatMap((i) => i.repoTags).filter((t) => t.startsWith(repository) && !images.loadedArtifacts().some((r) => r.name === t));
  assert.deepEqual(stallTags, []);
});

test('an artifact that expands past the room the worker gives it stops loading: one sentence, no image, not retried', async () => {
  const { images, capture } = freshStore({ maxExpandedBytes: async () => 64 * 1024 });
  const ref = { kind: 'task-image' as const, taskId: producer, path: 'public/expands.tar.gz' };
  await assert.rejects(images.ensure(ref, context('t')), (err: Error) => {
    assert.ok(err instanceof ImageFailure, String(err));
    assert.equal(err.kind, 'invalid');
    assert.match(err.message, /^The image artifact public\/expands\.tar\.gz of task \S+ cannot be loaded: it expands to more than 64\.0 KiB, more than this worker's disk can take for an image now \(image\.maxExpandedBytes, and the free space above the disk threshold\)\. Use a smaller image\.$/);
    return true;
  });
  assert.equal(events(capture, 'image download started').length, 1, 'not retried');
  assert.equal(events(capture, 'image loaded').length, 0);
  const repository = localRepository({ taskId: producer, path: ref.path });
  assert.deepEqual((await engine.listImages()).flatMap((i) => i.repoTags).filter((t) => t.startsWith(`${repository}:`)), [], 'nothing tagged');
  // With room enough the same artifact loads.
  const roomy = freshStore({ maxExpandedBytes: async () => 1024 ** 3 });
  assert.equal((await roomy.images.ensure(ref, context('t2'))).artifactHash, sha256File(files.gz));
  assert.equal((await engine.listImages()).flatMap((i) => i.repoTags).filter((t) => t.startsWith(`${repository}:`)).length, 1, 'the name the check looks for');
});

test('a private artifact without its scope is refused before any request', async () => {
  const { images, capture } = store();
  await assert.rejects(images.ensure({ kind: 'task-image', taskId: producer, path: 'private/x.tar' }, context('t')),
    /^ImageFailure: Not authorized to use the image artifact private\/x\.tar of task \S+: artifacts outside public\/ need the scope queue:get-artifact:private\/x\.tar in task\.scopes \(directly or through a role\); add it to the task\.$/);
  assert.equal(events(capture, 'image download started').length, 0);
});

test('concurrent pulls of one registry image share one pull', async () => {
  const { images } = store();
  const lines: string[][] = [[], []];
  const ref = { kind: 'registry' as const, name: OPEN_TASKENV_PASS };
  const [a, b] = await Promise.all([images.ensure(ref, context('a', lines[0])), images.ensure(ref, context('b', lines[1]))]);
  assert.equal(a.imageId, b.imageId);
  assert.ok(lines[1]!.some((l) => /which another task is pulling/.test(l)), lines[1]!.join('\n'));
  for (const l of lines) assert.equal(l.filter((x) => /^Pulling image /.test(x)).length, 1, 'each task sees the pull\'s lines once');
  a.release();
  b.release();
});

test('retries that run out fail the task with how many attempts were made', async () => {
  const { images, capture } = store();
  plan.push('503', '503', '503');
  const hits = storageHits;
  const lines: string[] = [];
  await assert.rejects(images.ensure({ kind: 'task-image', taskId: producer, path: 'public/flaky-out.tar' }, context('t', lines)), (err: Error) => {
    assert.ok(err instanceof ImageFailure);
    assert.equal(err.kind, 'transient');
    assert.match(err.message, /^Could not download the image artifact public\/flaky-out\.tar of task \S+ \(HTTP 503: storage is busy\)\. Gave up after 3 attempts\.$/);
    return true;
  });
  assert.equal(storageHits - hits, 3, 'downloadRetries 2: three attempts');
  assert.equal(lines.filter((l) => /Retrying in/.test(l)).length, 2, lines.join('\n'));
  assert.equal(events(capture, 'image load failed').length, 3);
});

test('a 401 from storage fails at once', async () => {
  const { images } = store();
  plan.push('401', '401');
  const hits = storageHits;
  await assert.rejects(images.ensure({ kind: 'task-image', taskId: producer, path: 'public/denied.tar' }, context('t')), (err: Error) => {
    assert.ok(err instanceof ImageFailure);
    assert.equal(err.kind, 'unauthorized');
    assert.match(err.message, /^Not authorized to download the image artifact public\/denied\.tar of task \S+ \(HTTP 401: <Error><Code>AccessDenied<\/Code><\/Error>\)\.$/);
    return true;
  });
  assert.equal(storageHits - hits, 1, 'not retried');
  plan.length = 0;
});

test('an error answer with a huge body is read only for its first few KiB', async () => {
  const { images } = store();
  plan.push('404-endless');
  await assert.rejects(images.ensure({ kind: 'task-image', taskId: producer, path: 'public/endless-404.tar' }, context('t')), (err: Error) => {
    assert.ok(err instanceof ImageFailure);
    assert.equal(err.kind, 'not-found');
    assert.ok(err.message.length < 600, `a short message: ${err.message.length} characters`);
    return true;
  });
  const sent = await hugeBodySent!;
  assert.ok(sent < 64 * 1024 * 1024, `the connection was dropped early (${sent} bytes sent of 256 MiB)`);
});

test('a private artifact is allowed through a role: scopes are expanded only when the task\'s fall short', async () => {
  const root = new taskcluster.Auth({ rootUrl: embedded.rootUrl, credentials: embedded.credentials });
  await root.createRole('project:image-readers', { description: 'reads private images', scopes: ['queue:get-artifact:private/*'] });
  const expand = authScopeExpander(embedded);
  let expansions = 0;
  const expandScopes = async (scopes: string[]) => { expansions++; return expand(scopes); };
  const ref = { kind: 'task-image' as const, taskId: producer, path: 'private/role.tar.gz' };
  const { images } = freshStore();
  await assert.rejects(images.ensure(ref, context('no-role', [], undefined, { scopes: new TaskScopes(['assume:project:nothing'], expandScopes) })),
    /Not authorized to use the image artifact private\/role\.tar\.gz .*queue:get-artifact:private\/role\.tar\.gz in task\.scopes \(directly or through a role\)/);
  assert.equal(expansions, 1);
  await assert.rejects(images.ensure(ref, context('no-expander', [], undefined, { scopes: new TaskScopes(['assume:project:image-readers']) })), /Not authorized/);
  const ready = await images.ensure(ref, context('via-role', [], undefined, { scopes: new TaskScopes(['assume:project:image-readers'], expandScopes) }));
  assert.equal(ready.artifactHash, sha256File(files.gz));
  assert.equal(expansions, 2);
  ready.release();
  const direct = await images.ensure(ref, context('direct', [], undefined, { scopes: new TaskScopes(['queue:get-artifact:private/role.tar.gz'], expandScopes) }));
  assert.equal(expansions, 2, 'the task\'s own scopes sufficed: no expansion');
  direct.release();
});

test('prepareImage gives the artifact\'s sha256 for chain of trust, and none for a registry image', async () => {
  const { images } = freshStore();
  const taskLog = { info: () => {}, warn: () => {} } as unknown as Parameters<typeof prepareImage>[3];
  const request = { taskId: 'cot', scopes: new TaskScopes([]), credentials: () => embedded.credentials };
  const signal = new AbortController().signal;
  const artifact = await prepareImage(images, { kind: 'task-image', taskId: producer, path: 'public/content-a.tar.zst' }, request, taskLog, signal);
  assert.equal(artifact.artifactHash, sha256File(files.zst));
  artifact.release();
  const again = await prepareImage(images, { kind: 'task-image', taskId: producer, path: 'public/content-a.tar.zst' }, request, taskLog, signal);
  assert.equal(again.artifactHash, sha256File(files.zst), 'remembered, the hash is the same');
  again.release();
  const registry = await prepareImage(images, { kind: 'registry', name: 'taskenv_pass:latest' }, request, taskLog, signal);
  assert.equal(registry.artifactHash, undefined);
  registry.release();
  await assert.rejects(prepareImage(images, { kind: 'task-image', taskId: producer, path: 'private/x.tar' }, request, taskLog, signal), ImageUnavailable);
});

test('the same bytes as an artifact of another task are not downloaded again: the image gets that artifact\'s name too', async () => {
  const { images, capture } = freshStore();
  const a = await images.ensure({ kind: 'task-image', taskId: producer, path: 'public/content-a.tar.zst' }, context('a'));
  a.release();
  const b = await images.ensure({ kind: 'task-image', taskId: producer2, path: 'public/content-b.tar.zst' }, context('b'));
  b.release();
  assert.equal(events(capture, 'image download started').length, 1, 'one download for both');
  assert.equal(b.imageId, a.imageId);
  assert.equal(b.artifactHash, sha256File(files.zst));
  const expected = `${localRepository({ taskId: producer2, path: 'public/content-b.tar.zst' })}:${sha256File(files.zst).slice(7, 19)}`;
  assert.equal(b.name, expected);
  assert.equal((await engine.inspectImage(expected))?.Id, a.imageId, 'tagged under its own deterministic name');
  const [reused] = events(capture, 'image reused').filter((e) => e.taskId === 'b');
  assert.equal(reused?.sameContentAs, `${producer}/0/public/content-a.tar.zst`);
  assert.deepEqual(images.loadedArtifacts().map((r) => r.path).sort(), ['public/content-a.tar.zst', 'public/content-b.tar.zst']);
  // And next time, by its own identity.
  const again = await images.ensure({ kind: 'task-image', taskId: producer2, path: 'public/content-b.tar.zst' }, context('c'));
  again.release();
  assert.equal(events(capture, 'image download started').length, 1);
});

test('image expiry counts from the end of use: releasing an image is a use', async () => {
  let clock = 1_000_000;
  const { images } = freshStore({ now: () => clock });
  const ready = await images.ensure({ kind: 'task-image', taskId: producer, path: 'public/release.tar' }, context('t'));
  assert.equal(images.lastUsed(ready.imageId), 1_000_000);
  clock = 9_000_000; // a long task
  ready.release();
  assert.equal(images.lastUsed(ready.imageId), 9_000_000);
});

test('a retry of a shared download uses the credentials of a task still waiting, not of the one that left', async () => {
  const { images } = freshStore({ downloadBaseDelayMs: 400, downloadRetries: 1 });
  const ref = { kind: 'task-image' as const, taskId: producer, path: 'private/retry.tar' };
  const scopes = ['queue:get-artifact:private/*'];
  let aGone = false;
  const aCredentials = () => (aGone ? { clientId: 'expired-run', accessToken: 'no-longer-valid' } : embedded.credentials);
  const aLines: string[] = [];
  const bLines: string[] = [];
  const aCancel = new AbortController();
  plan.push('503');
  const a = images.ensure(ref, context('a', aLines, aCancel.signal, { scopes: new TaskScopes(scopes), credentials: aCredentials }));
  a.catch(() => {});
  while (!aLines.some((l) => l.startsWith('Downloading image artifact') || /Retrying in/.test(l))) await sleep(5);
  const b = images.ensure(ref, context('b', bLines, undefined, { scopes: new TaskScopes(scopes) }));
  while (!bLines.some((l) => /which another task is downloading/.test(l)) || !aLines.some((l) => /Retrying in/.test(l))) await sleep(5);
  // Task A is cancelled during the backoff; its run's credentials are no good any more.
  aCancel.abort(new Error('task A cancelled'));
  aGone = true;
  await assert.rejects(a, /task A cancelled/);
  const ready = await b;
  assert.equal(ready.artifactHash, sha256File(files.tar), bLines.join('\n'));
  ready.release();
});

test('an eviction while a task is given a remembered artifact image does not remove it', async () => {
  const gated = new GatedEngine({ socketPath: DOCKER_SOCKET });
  const { images, dir } = freshStore({ engine: gated });
  const ref = { kind: 'task-image' as const, taskId: producer, path: 'public/race.tar.gz' };
  const first = await images.ensure(ref, context('first'));
  first.release();
  // The second task finds the image remembered and present; eviction starts right then.
  const g = gate();
  const reached = new Promise<void>((r) => { gated.inspectGate = { name: first.name, gate: g.promise, reached: r }; });
  const ensuring = images.ensure(ref, context('second'));
  await reached;
  const budget = await budgetFor(images, dir);
  const collecting = budget.collect();
  const early = await within(collecting, 1000);
  g.open();
  const [second, result] = await Promise.all([ensuring, collecting]);
  assert.equal(second.imageId, first.imageId);
  // (The artifact holds taskenv_pass, which the host also tags: the worker's own name is what it may remove.)
  assert.equal(early, undefined, 'the eviction waited for the task to be given the image');
  assert.equal((await engine.inspectImage(second.name))?.Id, second.imageId, 'the image the task was given is still there');
  assert.equal(result.removed.length, 0);
  assert.deepEqual(images.loadedArtifacts().map((r) => r.name), [second.name], 'and still remembered');
  assert.equal(images.inUse(second.imageId), true);
  second.release();
  await budget.collect();
  assert.equal(await engine.inspectImage(second.name), undefined, 'once released it is evictable');
  assert.deepEqual(images.loadedArtifacts(), []);
});

test('an eviction while a pulled tag is pulled again does not remove the copy on the host; a moved tag is recorded as pulled', async () => {
  const gated = new GatedEngine({ socketPath: DOCKER_SOCKET });
  const { images, dir } = freshStore({ engine: gated });
  const local = `race-src-${testWorkerId('a')}:v1`;
  const moved = `race-src-${testWorkerId('b')}:v1`;
  extraImages.push(local, moved);
  importTinyImage(local);
  importTinyImage(moved);
  const remote = `${OPEN_REGISTRY}/race-${testWorkerId('r')}:v1`;
  extraImages.push(remote);
  await pushImage(local, remote);
  dockerCli(['rmi', local]); // only in the registry now: the pull brings it
  const ctx = () => context('t');
  const first = await images.ensure({ kind: 'registry', name: remote }, ctx());
  first.release();
  assert.deepEqual(images.pulledImages().map((p) => p.imageId), [first.imageId]);

  const g = gate();
  gated.pullGate = g.promise;
  const entered = gated.pullsEntered;
  const ensuring = images.ensure({ kind: 'registry', name: remote }, ctx());
  while (gated.pullsEntered === entered) await sleep(5);
  const budget = await budgetFor(images, dir);
  const result = await budget.collect();
  assert.ok(!result.removed.some((r) => r.id === first.imageId), 'kept while the tag is pulled again');
  assert.equal((await engine.inspectImage(remote))?.Id, first.imageId, 'the copy on the host is untouched');
  g.open();
  gated.pullGate = undefined;
  const second = await ensuring;
  assert.equal(second.imageId, first.imageId);
  second.release();

  // The tag moves to another image in the registry; the next pull brings that one: it is ours.
  await pushImage(moved, remote);
  dockerCli(['rmi', moved]);
  const third = await images.ensure({ kind: 'registry', name: remote }, ctx());
  third.release();
  assert.notEqual(third.imageId, first.imageId);
  assert.deepEqual(images.pulledImages().map((p) => p.imageId).sort(), [first.imageId, third.imageId].sort(), 'the re-pulled image is recorded as pulled');
  const evicted = await budget.collect();
  assert.deepEqual(evicted.removed.map((r) => r.id).sort(), [first.imageId, third.imageId].sort(), 'both are evictable');
  assert.equal(await engine.inspectImage(remote), undefined);
  assert.equal(await engine.inspectImage(first.imageId), undefined, 'the image the tag moved away from is gone too');
});

test('a registry name the engine cannot look up fails as the task\'s error, not the worker\'s', async () => {
  const { images } = freshStore();
  await assert.rejects(images.ensure({ kind: 'registry', name: 'Not A/Valid::Name' }, context('t')), (err: Error) => {
    assert.ok(err instanceof ImageFailure, `${err.name}: ${err.message}`);
    assert.equal(err.kind, 'invalid');
    return true;
  });
});
