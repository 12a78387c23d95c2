// What time does to the queue, run every sweep interval: unresolved tasks past their deadline
// become exception/deadline-exceeded, runs whose claim was not renewed become
// exception/claim-expired (with a retry), and tasks, groups, dependencies and workers past
// their expiry are deleted (as the real queue's expire-tasks, expire-task-groups,
// expire-task-dependency and expire-worker-info jobs: each row by its own `expires`; a task
// group outlives its tasks by an hour, task-group-store.ts). Work is done in batches, each
// committed before the next (store.ts: group commit), so one sweep never holds the event loop
// or grows the write-ahead log by more than a batch.
import { durable, transaction } from '../store.ts';
import type { QueueCore } from './queue-core.ts';
import type { WorkerStore } from './worker-store.ts';

const BATCH = 200;

export async function sweepQueue(core: QueueCore, workers: WorkerStore, now = Date.now()): Promise<{ timedOut: number; expired: number }> {
  let timedOut = 0;
  // Deadlines first, so a task past its deadline never gets a retry run from claim expiry.
  for (const find of [() => core.tasks.deadlinesPassedBy(now, BATCH), () => core.tasks.claimsExpiredBy(now, BATCH)]) {
    const seen = new Set<string>();
    for (let ids = find(); ids.some((id) => !seen.has(id)); ids = find()) {
      // Loading applies the timeouts; each loaded task leaves the query's result.
      core.change((tx) => { for (const id of ids) tx.load(id); }, now, 'best-effort'); // resolvers only log a bad message
      for (const id of ids) seen.add(id);
      timedOut += ids.length;
      await durable(core.db);
    }
  }
  let expired = 0;
  for (let ids = core.tasks.expiredBy(now, BATCH); ids.length > 0; ids = core.tasks.expiredBy(now, BATCH)) {
    transaction(core.db, () => { for (const id of ids) core.tasks.delete(id); });
    expired += ids.length;
    await durable(core.db);
  }
  transaction(core.db, () => {
    core.dependencies.deleteExpired(now);
    core.groups.deleteExpired(now);
    workers.deleteExpired(now);
  });
  await durable(core.db);
  return { timedOut, expired };
}
