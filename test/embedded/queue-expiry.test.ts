// Expiry keeps the store from growing: rounds of short-lived tasks (dependencies, claims,
// s3 artifacts with data, index routes) all expire, every row and blob file they made is
// removed by the sweep as the real queue's expire-* jobs remove them, and the database reuses
// the freed pages: after three rounds it is no larger than after the first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DATABASE_FILE, openStore } from '../../lib/embedded/store.ts';
import { QueueCore } from '../../lib/embedded/queue/queue-core.ts';
import { WorkerStore } from '../../lib/embedded/queue/worker-store.ts';
import { sweepQueue } from '../../lib/embedded/queue/sweeper.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { startQueue, newTaskQueueId, slugid, taskDef, outcome } from './queue-fixtures.ts';

const TASKS = 60;
const CLAIMED = 20;
const LIFETIME_MS = 6_000;
const TABLES = ['queue_tasks', 'queue_task_dependencies', 'queue_artifacts', 'blobs', 'index_tasks'] as const;

function blobFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

test('rounds of expiring tasks, artifacts and index entries leave nothing behind and the store stops growing', async () => {
  const q = await startQueue({ sweepIntervalSeconds: 0.2 });
  const reader = () => new DatabaseSync(path.join(q.stateDir, DATABASE_FILE), { readOnly: true });
  const rows = (table: string) => {
    const db = reader();
    try { return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n; } finally { db.close(); }
  };
  const usedPages = () => {
    const db = reader();
    try {
      const pages = (db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count;
      const free = (db.prepare('PRAGMA freelist_count').get() as { freelist_count: number }).freelist_count;
      return { pages, free };
    } finally { db.close(); }
  };
  const taskQueueId = newTaskQueueId();
  const groups: string[] = [];
  const pagesAfter: number[] = [];
  let lastExpires = '';
  try {
    for (let round = 0; round < 3; round++) {
      const expires = new Date(Date.now() + LIFETIME_MS).toJSON();
      lastExpires = expires;
      const deadline = new Date(Date.now() + LIFETIME_MS - 1000).toJSON();
      const taskGroupId = slugid();
      groups.push(taskGroupId);
      const padding = 'x'.repeat(2000); // each task a few pages' worth of rows across rounds
      const ids: string[] = [];
      const first = slugid();
      for (let i = 0; i < TASKS; i++) {
        const taskId = i === 0 ? first : slugid();
        ids.push(taskId);
        await q.queue.createTask(taskId, taskDef(taskQueueId, {
          taskGroupId, deadline, expires, routes: ['index.expiry-test.latest'],
          ...(i >= CLAIMED ? { dependencies: [first] } : {}), // waiting on the first: dependency rows
          payload: { image: 'busybox', command: ['true'], maxRunTime: 60, env: { PADDING: padding } },
        }));
      }
      for (let done = 0; done < CLAIMED;) {
        const { tasks } = await q.queue.claimWork(taskQueueId, { workerGroup: 'g', workerId: 'w', tasks: CLAIMED - done });
        for (const claim of tasks) {
          const worker = q.client(claim.credentials);
          const { taskId } = claim.status;
          const created = await worker.createArtifact(taskId, 0, 'public/out.txt', { storageType: 's3', contentType: 'text/plain', expires });
          const put = await fetch(created.putUrl, { method: 'PUT', body: `output of ${taskId} `.repeat(50), headers: { 'content-type': 'text/plain' } });
          assert.equal(put.status, 200);
          // Completing the first schedules its dependents (whose claims are never made).
          if (taskId !== first) await worker.reportCompleted(taskId, 0);
          else await worker.reportFailed(taskId, 0);
        }
        done += tasks.length;
      }
      assert.ok(rows('queue_tasks') >= TASKS && rows('queue_artifacts') >= CLAIMED && rows('blobs') >= CLAIMED && rows('index_tasks') >= 1);
      assert.ok(blobFiles(path.join(q.stateDir, 'objects')).length >= CLAIMED);

      // After the expiry, the sweep removes everything the round made but its task group.
      const waitUntil = Date.parse(expires) + 1500;
      while (Date.now() < waitUntil) await new Promise((r) => setTimeout(r, 200));
      for (const table of TABLES) assert.equal(rows(table), 0, `${table} is empty after expiry (round ${round})`);
      assert.deepEqual(blobFiles(path.join(q.stateDir, 'objects')), [], 'no blob file is left');
      for (const taskId of ids.slice(0, 3)) assert.equal((await outcome(q.queue.task(taskId))).statusCode, 404);
      // The group stays an hour longer than its tasks (as the real queue keeps it).
      assert.equal(Date.parse((await q.queue.getTaskGroup(taskGroupId)).expires), Date.parse(expires) + 3_600_000);
      const { pages, free } = usedPages();
      pagesAfter.push(pages);
      assert.ok(free > 0 || round === 0, 'freed pages wait on the free list for reuse');
    }
    // A round writes ~60 pages of rows; the file stays within a few pages of its first-round size.
    assert.ok(pagesAfter[2]! - pagesAfter[0]! < 20, `database pages after each round: ${pagesAfter.join(', ')}`);
  } finally {
    await q.close().catch(() => {});
  }
});

test('task groups, workers and task queues expire by their own expiry; an hour after its last task for a group', async () => {
  const q = await startQueue();
  const taskQueueId = newTaskQueueId();
  const taskGroupId = slugid();
  const expires = new Date(Date.now() + 60_000).toJSON();
  let db: DatabaseSync | undefined;
  try {
    await q.queue.createTask(slugid(), taskDef(taskQueueId, { taskGroupId, deadline: new Date(Date.now() + 30_000).toJSON(), expires }));
    await q.queue.claimWork(taskQueueId, { workerGroup: 'g', workerId: 'w', tasks: 1 });
    await q.deployment.close();
    db = openStore(q.stateDir);
    const core = new QueueCore(db, silentLog);
    const workers = new WorkerStore(db);
    const count = (table: string) => (db!.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    const at = (offsetMs: number) => Date.parse(expires) + offsetMs;
    // Just after the task expires: the task goes, its group stays.
    assert.equal((await sweepQueue(core, workers, at(1))).expired, 1);
    assert.equal(count('queue_tasks'), 0);
    assert.equal(count('queue_task_groups'), 1);
    // An hour later the group goes too.
    await sweepQueue(core, workers, at(3_600_001));
    assert.equal(count('queue_task_groups'), 0);
    // Workers and task queues have their own, longer expiry (WorkerStore); a year on, they are gone.
    assert.ok(count('queue_workers') >= 1 && count('queue_task_queues') >= 1);
    await sweepQueue(core, workers, at(366 * 86_400_000));
    assert.equal(count('queue_workers'), 0);
    assert.equal(count('queue_task_queues'), 0);
  } finally {
    db?.close();
    await q.close().catch(() => {});
  }
});
