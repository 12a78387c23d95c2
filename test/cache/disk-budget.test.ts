// The disk budget as an operator sees it: with room to spare nothing happens; over the
// threshold the worker does not claim, raises the operator alert with the figures, and
// evicts in order — dangling volumes of its own, then images it brought (least recently used
// first, artifact images and pulled images alike), then unused cache instances (least recently
// used first) — never what a running task uses, never another program's containers, volumes or
// images. Images come from the worker's real ImageStore (ImageStoreRecords): artifact images it
// remembers loading and registry images it pulled from the local test registry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Engine } from '../../lib/docker/engine.ts';
import { VolumeCaches } from '../../lib/cache/volume-cache.ts';
import { ImageStore } from '../../lib/images/image-store.ts';
import { ImageStoreRecords } from '../../lib/cache/image-store-records.ts';
import { DiskBudget } from '../../lib/cache/disk-budget.ts';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import type { ImageRef } from '../../lib/task/types.ts';
import { ClaimLoop } from '../../lib/queue/claim-loop.ts';
import { queueClient } from '../../lib/queue/taskcluster.ts';
import { testEngine, testWorkerId, removeOwnedBy, dockerCli, TASKENV_PASS } from '../support/docker.ts';
import { OPEN_REGISTRY, pushImage } from '../support/registry.ts';
import { publishProducerTask } from '../images/image-fixtures.ts';
import { startQueue, newTaskQueueId, taskDef, slugid } from '../embedded/queue-fixtures.ts';
import { capturedLog, dockerRootDir, importTinyImage, tempDir, until, type LogEvent } from './support.ts';
import { TaskScopes } from '../../lib/scopes/task-scopes.ts';

const engine: Engine = testEngine();
const HUGE = 1e18; // bytes per free slot: no disk has that much
const dirs: string[] = [];
const images: string[] = [];
const foreign: { containers: string[]; volumes: string[] } = { containers: [], volumes: [] };
const workers: string[] = [];
let rootDir: string;
let embedded: EmbeddedDeployment;
/** Image tarballs (each a tiny image of its own) published as artifacts of one producer task. */
let producer: string;
const artifactIds = new Map<string, string>();
const ARTIFACTS = ['older', 'newer', 'in-use', 'shared', 'stale', 'stale-in-use', 'spare'];

/** A tiny image of its own, imported as a throwaway name; returns the name and id. */
function tinyImage(tag: string): { name: string; id: string } {
  const name = `budget-test-${testWorkerId(tag)}:v1`;
  images.push(name);
  return { name, id: importTinyImage(name) };
}

before(async () => {
  rootDir = dockerRootDir();
  const dir = tempDir('disk-budget-embedded');
  dirs.push(dir);
  embedded = await startEmbedded({ stateDir: path.join(dir, 'embedded'), port: 0, log: silentLog });
  // Each artifact holds a tiny image that is then removed from the host: only the worker's
  // load brings it back, under the worker's own name.
  const uploads = [];
  for (const label of ARTIFACTS) {
    const { name, id } = tinyImage(`art-${label}`);
    const file = path.join(dir, `${label}.tar`);
    dockerCli(['save', '-o', file, name]);
    dockerCli(['rmi', name]);
    artifactIds.set(label, id);
    uploads.push({ name: `public/${label}.tar`, file });
  }
  producer = await publishProducerTask(embedded.rootUrl, embedded.credentials, uploads);
});

after(async () => {
  for (const c of foreign.containers) dockerCli(['rm', '-f', c]);
  for (const v of foreign.volumes) dockerCli(['volume', 'rm', '-f', v]);
  for (const w of workers) await removeOwnedBy(engine, w);
  const loaded = `task-image/${producer?.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}/`;
  for (const image of await engine.listImages()) {
    for (const tag of image.repoTags.filter((t) => t.startsWith(loaded))) await engine.removeImage(tag);
  }
  for (const i of images) { try { dockerCli(['rmi', '-f', i]); } catch { /* already gone */ } }
  await embedded?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setup(options: { thresholdBytes: number; imageExpirationSeconds?: number; active?: string[] }) {
  const dir = tempDir('disk-budget');
  dirs.push(dir);
  const workerId = testWorkerId('budget');
  workers.push(workerId);
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const { log, events } = capturedLog();
  const caches = await VolumeCaches.open({ dir: path.join(dir, 'caches'), workerPool: 'p/w', log, now });
  const store = new ImageStore({ engine, log, stateDir: dir, rootUrl: embedded.rootUrl, registries: {}, pullRetries: 0, pullBaseDelayMs: 10, now });
  const budget = new DiskBudget({
    engine, workerId, caches, images: new ImageStoreRecords(store), log, now,
    thresholdBytes: options.thresholdBytes, imageExpirationSeconds: options.imageExpirationSeconds ?? 0,
    dockerRootDir: async () => rootDir, activeTaskIds: () => options.active ?? [],
  });
  const ctx = { scopes: new TaskScopes([]), credentials: () => embedded.credentials, taskLog: { info: () => {}, warn: () => {} }, signal: new AbortController().signal };
  /** A task uses the image now (and, unless `keep`, is done with it at once). */
  const use = async (ref: ImageRef, keep = false) => {
    const ready = await store.ensure(ref, ctx);
    if (!keep) ready.release();
    return ready;
  };
  return { workerId, caches, store, budget, events, use, tick: (ms = 1000) => { clock += ms; } };
}

/** An artifact image of the producer (loaded by the store from the embedded deployment). */
const artifact = (label: string): ImageRef => ({ kind: 'task-image', taskId: producer, path: `public/${label}.tar` });

/** A registry image only the local test registry has (the worker's pull brings it). */
async function registryImage(label: string): Promise<ImageRef & { kind: 'registry' }> {
  const { name } = tinyImage(`src-${label}`);
  const remote = `${OPEN_REGISTRY}/budget-${testWorkerId(label)}:v1`;
  images.push(remote);
  await pushImage(name, remote);
  dockerCli(['rmi', name]);
  return { kind: 'registry', name: remote };
}

const imageExists = async (ref: string) => (await engine.inspectImage(ref)) !== undefined;
const volumeNames = () => dockerCli(['volume', 'ls', '-q']).split('\n');
const index = (events: LogEvent[], message: string, field: string, value: unknown) =>
  events.findIndex((e) => e.message === message && JSON.stringify(e[field]) === JSON.stringify(value));

test('with room to spare the worker claims and removes nothing', async () => {
  const { budget, caches, events, use } = await setup({ thresholdBytes: 1 });
  const spare = await use(artifact('spare'));
  const lease = await caches.acquire('t', [{ name: 'c', mountPoint: '/c' }], new TaskScopes(['*']));
  await lease.release(false);
  assert.equal(await budget.gate(4), undefined);
  assert.ok(!events.some((e) => /alert-operator/.test(e.message)));
  assert.ok(await imageExists(spare.imageId));
  assert.equal(caches.list().length, 1);
  const space = await budget.space();
  assert.ok(space.length >= 1 && space.every((s) => s.freeBytes > 0 && s.totalBytes >= s.freeBytes));
});

test('over the threshold: no claim, an operator alert, and eviction in order of what nobody uses', async () => {
  const runningTask = 'running-task-id';
  const { workerId, budget, store, caches, events, use, tick } = await setup({ thresholdBytes: HUGE, active: [runningTask] });

  // Volumes: one dangling of ours; the anonymous volume of an image's VOLUME, left behind by a
  // container removed without it; one of a running task; one a stopped container of ours
  // mounts; one of another worker; one of another program.
  const dangling = `${workerId}-dangling`;
  const ofRunningTask = `${workerId}-running`;
  const mounted = `${workerId}-mounted`;
  const otherWorker = testWorkerId('other-worker');
  workers.push(otherWorker);
  await engine.createVolume(dangling, { workerId });
  await engine.createVolume(ofRunningTask, { workerId, taskId: runningTask });
  await engine.createVolume(mounted, { workerId });
  await engine.createVolume(`${otherWorker}-vol`, { workerId: otherWorker });
  const foreignVolume = `foreign-${workerId}`;
  dockerCli(['volume', 'create', foreignVolume]);
  foreign.volumes.push(foreignVolume);
  await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['true'], HostConfig: { Binds: [`${mounted}:/data`] } }, { workerId });
  const volumeImage = `budget-volume-${workerId}:v1`;
  images.push(volumeImage);
  dockerCli(['build', '-q', '-t', volumeImage, '-'], { input: `FROM ${TASKENV_PASS}\nVOLUME /data\n` });
  const finished = await engine.createContainer({ Image: volumeImage, Cmd: ['true'] }, { workerId, taskId: 'finished-task' });
  const anonymous = (await engine.inspectContainer(finished)).Mounts.find((m) => m.Type === 'volume')!.Name!;
  dockerCli(['rm', finished]); // without -v: the volume stays, dangling

  // Images the worker brought, artifact and pulled mixed, in order of last use: older artifact,
  // older pull, newer artifact, newer pull; one in use; one another program also tagged.
  // And one it did not bring (used by another program's container).
  const olderPull = await registryImage('older-pull');
  const newerPull = await registryImage('newer-pull');
  const older = await use(artifact('older')); tick();
  const pulledFirst = await use(olderPull); tick();
  const newer = await use(artifact('newer')); tick();
  const pulledLast = await use(newerPull); tick();
  const inUse = await use(artifact('in-use'), true); tick();
  const shared = await use(artifact('shared')); tick();
  const sharedForeignTag = `budget-foreign-${workerId}:kept`;
  dockerCli(['tag', shared.imageId, sharedForeignTag]); images.push(sharedForeignTag);
  const notOurs = tinyImage('not-ours').id;
  const foreignContainer = dockerCli(['create', '--name', `foreign-${workerId}`, TASKENV_PASS, 'true']);
  foreign.containers.push(foreignContainer);
  // Used again later: the newer pull is now the most recently used image of all.
  await use(newerPull); tick();

  // Caches: two free (older, newer) and one in use.
  const req = [{ name: 'gc', mountPoint: '/c' }];
  const a = await caches.acquire('t-a', req, new TaskScopes(['*']));
  const b = await caches.acquire('t-b', req, new TaskScopes(['*']));
  const busy = await caches.acquire('t-busy', req, new TaskScopes(['*']));
  await a.release(false); tick();
  await b.release(false); tick();

  const reason = await budget.gate(2);
  assert.match(reason ?? '', /^diskspace threshold reached: .+ free on \/.+; .+ needed \(.+ per free slot x 2\)$/);
  const alert = events.find((e) => e.message === '[alert-operator] diskspace threshold reached');
  assert.ok(alert, 'operator alert logged');
  assert.equal(alert.level, 'warn');
  assert.equal(alert.neededBytes, HUGE * 2);
  assert.equal(alert.freeSlots, 2);
  assert.ok(Array.isArray(alert.space) && (alert.space as { path: string }[]).some((s) => s.path === rootDir || s.path.endsWith('caches')));

  // Removed, in order.
  const order = [
    index(events, 'removed dangling volume', 'volume', dangling),
    index(events, 'removed dangling volume', 'volume', anonymous),
    index(events, 'removed image', 'imageId', older.imageId),
    index(events, 'removed image', 'imageId', pulledFirst.imageId),
    index(events, 'removed image', 'imageId', newer.imageId),
    index(events, 'removed image', 'imageId', pulledLast.imageId),
    index(events, 'removed volume cache instance', 'instanceId', a.attached[0]!.instanceId),
    index(events, 'removed volume cache instance', 'instanceId', b.attached[0]!.instanceId),
  ];
  assert.ok(order.every((i) => i >= 0), `all evicted: ${order}`);
  const images1 = order.slice(2, 6);
  assert.deepEqual([...images1].sort((x, y) => x - y), images1, 'images least recently used first, artifact and pulled alike');
  assert.ok(Math.max(order[0]!, order[1]!) < Math.min(...images1), 'volumes first');
  assert.ok(Math.max(...images1) < Math.min(order[6]!, order[7]!), 'then images, then caches');
  assert.ok(order[6]! < order[7]!, 'caches least recently used first');
  for (const gone of [older, pulledFirst, newer, pulledLast]) assert.equal(await imageExists(gone.imageId), false, `${gone.name} removed`);
  assert.equal(await imageExists(olderPull.name), false);
  assert.equal(existsSync(a.attached[0]!.hostPath), false);
  assert.equal(existsSync(b.attached[0]!.hostPath), false);
  assert.deepEqual(store.pulledImages(), [], 'the removed pulls are forgotten');

  // Kept: anything in use, and everything that is not ours.
  const volumes = volumeNames();
  for (const v of [ofRunningTask, mounted, `${otherWorker}-vol`, foreignVolume]) assert.ok(volumes.includes(v), `volume ${v} kept`);
  assert.ok(!volumes.includes(dangling));
  assert.ok(!volumes.includes(anonymous));
  assert.ok(await imageExists(inUse.name), 'image in use kept');
  assert.ok(await imageExists(notOurs), 'image the worker did not bring kept');
  assert.ok(await imageExists(sharedForeignTag), "another program's tag kept");
  assert.equal(await imageExists(shared.name), false, "the worker's own tag of that image removed");
  assert.ok(dockerCli(['ps', '-a', '-q', '--no-trunc']).includes(foreignContainer), "another program's container kept");
  assert.ok(existsSync(busy.attached[0]!.hostPath), 'cache instance in use kept');
  assert.deepEqual(caches.list().map((i) => i.id), [busy.attached[0]!.instanceId]);
  assert.deepEqual(store.loadedArtifacts().map((r) => r.path), ['public/in-use.tar'], 'only the image in use is still remembered');

  // Released, the busy ones become evictable.
  inUse.release();
  await busy.release(false);
  const again = await budget.collect();
  assert.deepEqual(again.removed.map((r) => r.kind).sort(), ['cache', 'image']);
  assert.equal(again.met, false);
  assert.equal(await imageExists(inUse.imageId), false);
  assert.ok(await imageExists(notOurs));
});

test('images the worker brought expire after imageExpirationSeconds without use, counted from the end of use', async () => {
  const { budget, use, tick } = await setup({ thresholdBytes: 1, imageExpirationSeconds: 3600 });
  const stalePull = await registryImage('stale-pull');
  const freshPull = await registryImage('fresh-pull');
  const stale = await use(artifact('stale'));
  const pulledStale = await use(stalePull);
  const longTask = await use(artifact('stale-in-use'), true); // given out two hours ago, still in use
  tick(2 * 3600_000);
  const pulledFresh = await use(freshPull);
  const notOurs = tinyImage('old-not-ours').id;
  assert.equal(await budget.gate(1), undefined);
  assert.equal(await imageExists(stale.imageId), false, 'artifact unused for two hours: removed');
  assert.equal(await imageExists(pulledStale.imageId), false, 'pull unused for two hours: removed');
  assert.ok(await imageExists(longTask.name), 'in use: kept');
  assert.ok(await imageExists(pulledFresh.imageId), 'recently used: kept');
  assert.ok(await imageExists(notOurs), 'not brought by the worker: kept');
  // The long task ends now: its image was used until now, so it is not stale yet.
  longTask.release();
  tick(30 * 60_000);
  assert.deepEqual(await budget.expireImages(true), []);
  assert.ok(await imageExists(longTask.name), 'released half an hour ago: kept');
  await use(freshPull);
  tick(31 * 60_000);
  assert.deepEqual((await budget.expireImages(true)).map((r) => r.id), [longTask.imageId]);
});

test('the claim loop does not claim while the disk budget is not met', async () => {
  const { budget } = await setup({ thresholdBytes: HUGE });
  const q = await startQueue({ claimWorkWaitSeconds: 1 });
  try {
    const taskQueueId = newTaskQueueId();
    const taskId = slugid();
    await q.queue.createTask(taskId, taskDef(taskQueueId));
    const { log, events } = capturedLog();
    let ran = 0;
    const loop = new ClaimLoop({
      queue: queueClient(q.deployment), taskQueueId, workerGroup: 'wg', workerId: 'budget-loop', capacity: 2, log,
      runTask: async () => { ran += 1; }, refuseTask: async () => {}, gate: (free) => budget.gate(free),
    });
    loop.start();
    await until(() => events.some((e) => e.message === 'not claiming'), 'the loop to refuse claiming');
    await loop.stop();
    const refusal = events.find((e) => e.message === 'not claiming')!;
    assert.match(String(refusal.reason), /^diskspace threshold reached/);
    assert.equal(ran, 0);
    assert.equal((await q.queue.status(taskId)).status.state, 'pending');
  } finally {
    await q.close();
  }
});

test('roomForImages: the Docker root\'s free space above the threshold, never below 0', async () => {
  const small = await setup({ thresholdBytes: 1_000_000 });
  const { statfs } = await import('node:fs/promises');
  const s = await statfs(rootDir);
  const free = s.bavail * s.bsize;
  const room = await small.budget.roomForImages();
  assert.ok(Math.abs(room - (free - 1_000_000)) < 64 * 1024 * 1024, `room ${room} against free ${free}`);
  const full = await setup({ thresholdBytes: free * 2 });
  assert.equal(await full.budget.roomForImages(), 0);
});
