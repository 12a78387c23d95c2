// The disk budget over the worker's real ImageStore: artifact images it loaded are evicted when
// no task holds them (and forgotten, so the next task loads them again); an image that was on
// the host before the worker used it is never the budget's to remove.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ImageStore } from '../../lib/images/image-store.ts';
import { ImageStoreRecords } from '../../lib/cache/image-store-records.ts';
import { VolumeCaches } from '../../lib/cache/volume-cache.ts';
import { DiskBudget } from '../../lib/cache/disk-budget.ts';
import { testEngine, testWorkerId, dockerCli, TASKENV_PASS } from '../support/docker.ts';
import { capturedLog, dockerRootDir, importTinyImage, tempDir } from './support.ts';
import { TaskScopes } from '../../lib/scopes/task-scopes.ts';

const engine = testEngine();
const dirs: string[] = [];
const images: string[] = [];
after(() => {
  for (const i of images) { try { dockerCli(['rmi', '-f', i]); } catch { /* gone */ } }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('artifact images the ImageStore loaded are evicted once no task holds them; images it did not bring stay', async () => {
  const stateDir = tempDir('image-store-records');
  dirs.push(stateDir);
  const name = `budget-artifact-${testWorkerId('img')}:loaded`;
  images.push(name);
  const imageId = importTinyImage(name);
  // The ImageStore's memory from an earlier life: it loaded this artifact image (a restart keeps it).
  mkdirSync(path.join(stateDir, 'images'), { recursive: true });
  writeFileSync(path.join(stateDir, 'images', 'loaded-images.json'), JSON.stringify({
    version: 1,
    artifacts: { [`T/0/public/image.tar`]: { key: 'T/0/public/image.tar', taskId: 'T', runId: 0, path: 'public/image.tar', digest: `sha256:${'0'.repeat(64)}`, name, imageId, bytes: 1, loadedAt: new Date(Date.now() - 3600_000).toISOString() } },
    lastUsed: { [imageId]: Date.now() - 3600_000 },
  }));
  const { log, events } = capturedLog();
  const store = new ImageStore({ engine, log, stateDir, rootUrl: 'http://127.0.0.1:9', registries: {}, pullRetries: 0, pullBaseDelayMs: 0 });
  const records = new ImageStoreRecords(store);
  const caches = await VolumeCaches.open({ dir: path.join(stateDir, 'caches'), workerPool: 'p/w', log });
  const budget = new DiskBudget({
    engine, workerId: testWorkerId('img-budget'), caches, images: records, log, thresholdBytes: 1e18, imageExpirationSeconds: 0,
    dockerRootDir: async () => dockerRootDir(),
  });

  // The host's own test image, given to a task (it was already here: the store only falls back to it).
  const hostImage = (await engine.inspectImage(TASKENV_PASS))!.Id;
  const given = await store.ensure({ kind: 'registry', name: TASKENV_PASS }, {
    scopes: new TaskScopes([]), credentials: () => ({ clientId: 'x', accessToken: 'x' }), taskLog: { info: () => {}, warn: () => {} }, signal: new AbortController().signal,
  }).catch((err: Error) => { assert.fail(`the local test image should be usable: ${err.message}`); });
  assert.equal(given.imageId, hostImage);
  given.release();

  const listed = await records.list();
  assert.deepEqual(listed.map((i) => i.imageId), [imageId], 'only the loaded artifact image is the worker\'s');

  const lease = store.acquire(imageId);
  assert.ok((await budget.gate(1))?.startsWith('diskspace threshold reached'));
  assert.ok(await engine.inspectImage(name), 'held by a task: kept');
  lease();
  const result = await budget.collect();
  assert.deepEqual(result.removed.map((r) => r.id), [imageId]);
  assert.equal(await engine.inspectImage(name), undefined);
  assert.deepEqual(store.loadedArtifacts(), [], 'forgotten: the next task loads it again');
  assert.ok(await engine.inspectImage(TASKENV_PASS), 'the host image stays');
  assert.ok(events.some((e) => e.message === 'removed image' && e.imageId === imageId));
});

test('a registry image the worker pulled onto the host is evictable; one that was already there is not', async () => {
  const { OPEN_REGISTRY, pushImage } = await import('../support/registry.ts');
  const stateDir = tempDir('image-store-pulled');
  dirs.push(stateDir);
  const local = `budget-pulled-${testWorkerId('src')}:v1`;
  images.push(local);
  importTinyImage(local);
  const remote = `${OPEN_REGISTRY}/budget-pulled-${testWorkerId('r')}:v1`;
  images.push(remote);
  await pushImage(local, remote); // leaves no local `remote` tag
  const { log } = capturedLog();
  const store = new ImageStore({ engine, log, stateDir, rootUrl: 'http://127.0.0.1:9', registries: {}, pullRetries: 0, pullBaseDelayMs: 0 });
  const ctx = { scopes: new TaskScopes([]), credentials: () => ({ clientId: 'x', accessToken: 'x' }), taskLog: { info: () => {}, warn: () => {} }, signal: new AbortController().signal };
  const pulled = await store.ensure({ kind: 'registry', name: remote }, ctx);
  pulled.release();
  const again = await store.ensure({ kind: 'registry', name: TASKENV_PASS }, ctx); // on the host before: not the worker's
  again.release();
  assert.deepEqual(store.pulledImages().map((p) => p.name), [remote]);
  const caches = await VolumeCaches.open({ dir: path.join(stateDir, 'caches'), workerPool: 'p/w', log });
  const budget = new DiskBudget({
    engine, workerId: testWorkerId('pull-budget'), caches, images: new ImageStoreRecords(store), log, thresholdBytes: 1e18,
    imageExpirationSeconds: 0, dockerRootDir: async () => dockerRootDir(),
  });
  await budget.collect();
  assert.equal(await engine.inspectImage(remote), undefined, 'the pulled image was evicted');
  assert.ok(await engine.inspectImage(local), 'the image it was pushed from stays');
  assert.ok(await engine.inspectImage(TASKENV_PASS), 'the host image stays');
  assert.deepEqual(store.pulledImages(), []);
});
