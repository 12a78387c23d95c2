// The disk budget as an operator sees it: with room to spare nothing happens; over the
// threshold the worker does not claim, raises the operator alert with the figures, and
// evicts in order — dangling volumes of its own, then images it brought (least recently used
// first), then unused cache instances (least recently used first) — never what a running task
// uses, never another program's containers, volumes or images.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Engine } from '../../lib/docker/engine.ts';
import { VolumeCaches } from '../../lib/cache/volume-cache.ts';
import { RecordedImages } from '../../lib/cache/image-records.ts';
import { DiskBudget } from '../../lib/cache/disk-budget.ts';
import { ClaimLoop } from '../../lib/queue/claim-loop.ts';
import { queueClient } from '../../lib/queue/taskcluster.ts';
import { testEngine, testWorkerId, removeOwnedBy, dockerCli, TASKENV_PASS } from '../support/docker.ts';
import { startQueue, newTaskQueueId, taskDef, slugid } from '../embedded/queue-fixtures.ts';
import { capturedLog, dockerRootDir, importTinyImage, tempDir, until, type LogEvent } from './support.ts';

const engine: Engine = testEngine();
const HUGE = 1e18; // bytes per free slot: no disk has that much
const dirs: string[] = [];
const images: string[] = [];
const foreign: { containers: string[]; volumes: string[] } = { containers: [], volumes: [] };
const workers: string[] = [];
let rootDir: string;

before(() => { rootDir = dockerRootDir(); });
after(async () => {
  for (const c of foreign.containers) dockerCli(['rm', '-f', c]);
  for (const v of foreign.volumes) dockerCli(['volume', 'rm', '-f', v]);
  for (const w of workers) await removeOwnedBy(engine, w);
  for (const i of images) { try { dockerCli(['rmi', '-f', i]); } catch { /* already gone */ } }
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
  const caches = await VolumeCaches.open({ dir: path.join(dir, 'caches'), workerPool: 'p/w', expandScopes: async (s) => s, log, now });
  const records = new RecordedImages(path.join(dir, 'images.json'), engine, now);
  const budget = new DiskBudget({
    engine, workerId, caches, images: records, log, now,
    thresholdBytes: options.thresholdBytes, imageExpirationSeconds: options.imageExpirationSeconds ?? 0,
    dockerRootDir: async () => rootDir, activeTaskIds: () => options.active ?? [],
  });
  return { workerId, caches, records, budget, events, tick: (ms = 1000) => { clock += ms; } };
}

function tinyImage(tag: string): string {
  const name = `budget-test-${testWorkerId(tag)}:v1`;
  images.push(name);
  return importTinyImage(name);
}

const imageExists = async (ref: string) => (await engine.inspectImage(ref)) !== undefined;
const volumeNames = () => dockerCli(['volume', 'ls', '-q']).split('\n');
const index = (events: LogEvent[], message: string, field: string, value: unknown) =>
  events.findIndex((e) => e.message === message && JSON.stringify(e[field]) === JSON.stringify(value));

test('with room to spare the worker claims and removes nothing', async () => {
  const { budget, records, caches, events } = await setup({ thresholdBytes: 1 });
  const id = tinyImage('spare');
  records.record(id, images.at(-1)!);
  const lease = await caches.acquire('t', [{ name: 'c', mountPoint: '/c' }], ['*']);
  await lease.release(false);
  assert.equal(await budget.gate(4), undefined);
  assert.ok(!events.some((e) => /alert-operator/.test(e.message)));
  assert.ok(await imageExists(id));
  assert.equal(caches.list().length, 1);
  const space = await budget.space();
  assert.ok(space.length >= 1 && space.every((s) => s.freeBytes > 0 && s.totalBytes >= s.freeBytes));
});

test('over the threshold: no claim, an operator alert, and eviction in order of what nobody uses', async () => {
  const runningTask = 'running-task-id';
  const { workerId, budget, records, caches, events, tick } = await setup({ thresholdBytes: HUGE, active: [runningTask] });

  // Volumes: one dangling of ours; one of a running task; one a stopped container of ours mounts;
  // one of another worker; one of another program.
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

  // Images: brought by the worker (older, newer, in use, and one another program also tagged),
  // and one it did not bring (used by another program's container).
  const older = tinyImage('older'); records.record(older, images.at(-1)!); tick();
  const newer = tinyImage('newer'); records.record(newer, images.at(-1)!); tick();
  const inUse = tinyImage('in-use'); records.record(inUse, images.at(-1)!); const stopUsing = records.use(inUse); tick();
  const shared = tinyImage('shared'); records.record(shared, images.at(-1)!); tick();
  const sharedForeignTag = `budget-foreign-${workerId}:kept`;
  dockerCli(['tag', shared, sharedForeignTag]); images.push(sharedForeignTag);
  const notOurs = tinyImage('not-ours');
  const foreignContainer = dockerCli(['create', '--name', `foreign-${workerId}`, TASKENV_PASS, 'true']);
  foreign.containers.push(foreignContainer);

  // Caches: two free (older, newer) and one in use.
  const req = [{ name: 'gc', mountPoint: '/c' }];
  const a = await caches.acquire('t-a', req, ['*']);
  const b = await caches.acquire('t-b', req, ['*']);
  const busy = await caches.acquire('t-busy', req, ['*']);
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
    index(events, 'removed image', 'imageId', older),
    index(events, 'removed image', 'imageId', newer),
    index(events, 'removed volume cache instance', 'instanceId', a.attached[0]!.instanceId),
    index(events, 'removed volume cache instance', 'instanceId', b.attached[0]!.instanceId),
  ];
  assert.ok(order.every((i) => i >= 0), `all evicted: ${order}`);
  assert.deepEqual([...order].sort((x, y) => x - y), order, 'volumes, then images LRU first, then caches LRU first');
  assert.equal(await imageExists(older), false);
  assert.equal(await imageExists(newer), false);
  assert.equal(existsSync(a.attached[0]!.hostPath), false);
  assert.equal(existsSync(b.attached[0]!.hostPath), false);

  // Kept: anything in use, and everything that is not ours.
  const volumes = volumeNames();
  for (const v of [ofRunningTask, mounted, `${otherWorker}-vol`, foreignVolume]) assert.ok(volumes.includes(v), `volume ${v} kept`);
  assert.ok(!volumes.includes(dangling));
  assert.ok(await imageExists(inUse), 'image in use kept');
  assert.ok(await imageExists(notOurs), 'image the worker did not bring kept');
  assert.ok(await imageExists(sharedForeignTag), "another program's tag kept");
  assert.equal(await imageExists(images.find((n) => n.includes('shared'))!), false, "the worker's own tag of that image removed");
  assert.ok(dockerCli(['ps', '-a', '-q', '--no-trunc']).includes(foreignContainer), "another program's container kept");
  assert.ok(existsSync(busy.attached[0]!.hostPath), 'cache instance in use kept');
  assert.deepEqual(caches.list().map((i) => i.id), [busy.attached[0]!.instanceId]);

  // Released, the busy ones become evictable.
  stopUsing();
  await busy.release(false);
  const again = await budget.collect();
  assert.deepEqual(again.removed.map((r) => r.kind).sort(), ['cache', 'image']);
  assert.equal(again.met, false);
  assert.equal(await imageExists(inUse), false);
  assert.ok(await imageExists(notOurs));
});

test('images the worker brought expire after imageExpirationSeconds without use', async () => {
  const { budget, records, tick } = await setup({ thresholdBytes: 1, imageExpirationSeconds: 3600 });
  const stale = tinyImage('stale'); records.record(stale, images.at(-1)!);
  const staleInUse = tinyImage('stale-in-use'); records.record(staleInUse, images.at(-1)!);
  const stop = records.use(staleInUse);
  tick(2 * 3600_000);
  const fresh = tinyImage('fresh'); records.record(fresh, images.at(-1)!);
  const notOurs = tinyImage('old-not-ours');
  assert.equal(await budget.gate(1), undefined);
  assert.equal(await imageExists(stale), false, 'unused for two hours: removed');
  assert.ok(await imageExists(staleInUse), 'in use: kept');
  assert.ok(await imageExists(fresh), 'recently used: kept');
  assert.ok(await imageExists(notOurs), 'not brought by the worker: kept');
  stop();
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
