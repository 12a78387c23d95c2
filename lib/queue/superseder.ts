// Superseding (payload.supersederUrl), as docker-worker did it: before a claimed task runs,
// its superseder names the tasks that supersede one another (superseder-fetch.ts); the worker
// claims the others (claimTask, runId 0, with its own credentials), and the latest task in the
// list whose claim succeeded — the primary — runs in the claimed task's slot. The other claims
// (the secondaries) are reclaimed while it runs; when it is reported, each secondary is
// resolved exception/superseded with `public/superseded-by.json` ({taskId, runId} of the
// primary), and the primary gets `public/supersedes.json` ([{taskId, runId}, ...]). (A queue
// that refuses the reason `superseded`, as v106 does, gets `resource-unavailable`: see
// reportSecondary.)
//
// A primary that was cancelled, shut down or stopped by a worker error covered nothing: then
// the secondaries are resolved exception/worker-shutdown (the queue runs them again while they
// have retries) — never left claimed. A secondary whose claim is lost or cancelled meanwhile is
// dropped. Without a usable answer (unreachable, garbage, the claimed task not in the list) the
// claimed task runs alone, with a warning in its log.
import type { WorkerLog } from '../log/worker-log.ts';
import { ArtifactPublisher, type StorageType } from '../artifacts/upload.ts';
import { Reclaimer } from './reclaimer.ts';
import { statusCodeOf } from '../retry/with-retries.ts';
import { TaskClaim } from './task-claim.ts';
import type { RunJournal } from './run-journal.ts';
import type { ClaimResponse, QueueClient } from './taskcluster.ts';
import { fetchSupersedes } from './superseder-fetch.ts';

export const SUPERSEDED_BY_ARTIFACT = 'public/superseded-by.json';
export const SUPERSEDES_ARTIFACT = 'public/supersedes.json';

/** How the primary's run ended, as far as its secondaries care. */
export type PrimaryResult = 'resolved' | 'not-covered';

export interface RunCompanion {
  /** Lines the primary's task log starts with (after its header). */
  logLines: { level: 'info' | 'warn'; text: string }[];
  /**
   * Once, after the primary's log upload and cleanup, before it is reported: resolves the
   * secondaries and gives the primary its supersedes.json (with `primary`'s credentials).
   */
  beforeReport(result: PrimaryResult, primary: TaskClaim): Promise<void>;
}

export interface SupersedingOptions {
  rootUrl: string;
  /** The worker's own client (claimTask). */
  queue: QueueClient;
  workerGroup: string;
  workerId: string;
  log: WorkerLog;
  storageType: StorageType;
  uploadRetries: number;
  reclaimMarginSeconds: number;
  tmpDir: string;
  timeoutMs?: number;
  /** Crash recovery: the secondaries are journalled (without a log) until they are reported. */
  journal?: RunJournal;
}

interface Secondary { claim: TaskClaim; reclaimer: Reclaimer; gone: boolean }

function artifactExpiry(claim: ClaimResponse): string {
  const task = claim.task;
  if (task.expires) return task.expires;
  const d = new Date(task.deadline);
  d.setFullYear(d.getFullYear() + 1);
  return d.toISOString();
}

/**
 * Reports a secondary. The queue's reportException took `superseded` when docker-worker and
 * generic-worker superseded tasks; today's queue (v106) refuses it (400: the request schema
 * no longer lists it, though a run's reasonResolved still may be `superseded`). Then the run is
 * reported `resource-unavailable`: of the reasons left, the one the queue neither retries (the
 * point of superseding is not to run the task) nor blames on the task's payload or the worker.
 * Its superseded-by.json says what happened.
 */
async function reportSecondary(claim: TaskClaim, reason: 'superseded' | 'worker-shutdown'): Promise<string> {
  try {
    await claim.queue().reportException(claim.taskId, claim.runId, { reason });
    return reason;
  } catch (err) {
    if (reason !== 'superseded' || statusCodeOf(err) !== 400) throw err;
  }
  await claim.queue().reportException(claim.taskId, claim.runId, { reason: 'resource-unavailable' });
  return 'resource-unavailable';
}

/** The claimed task with the tasks that supersede it, or alone. */
export class SupersedingGroup {
  readonly primary: ClaimResponse;
  readonly companion: RunCompanion;
  readonly #options: SupersedingOptions;
  readonly #secondaries: Secondary[];
  #settled = false;

  private constructor(options: SupersedingOptions, primary: ClaimResponse, secondaries: TaskClaim[], logLines: RunCompanion['logLines']) {
    this.#options = options;
    this.primary = primary;
    const { journal } = options;
    this.#secondaries = secondaries.map((claim) => {
      const s: Secondary = { claim, gone: false, reclaimer: undefined as unknown as Reclaimer };
      const record = () => ({ credentials: claim.credentials, takenUntil: claim.takenUntil.toISOString() });
      journal?.write({ taskId: claim.taskId, runId: claim.runId, ...record() });
      const drop = () => { s.gone = true; journal?.remove(claim.taskId, claim.runId); };
      s.reclaimer = new Reclaimer({
        claim, log: options.log, marginSeconds: options.reclaimMarginSeconds, cancelPollSeconds: 0,
        onReclaimed: () => journal?.update(claim.taskId, claim.runId, record()),
        onCancelled: () => { drop(); options.log.warn('superseded task was resolved elsewhere; dropped', { taskId: claim.taskId, runId: claim.runId, primary: primary.status.taskId }); },
        onLost: (err) => { drop(); options.log.warn('superseded task claim lost; dropped', { taskId: claim.taskId, runId: claim.runId, error: err.message }); },
      });
      s.reclaimer.start();
      return s;
    });
    this.companion = { logLines, beforeReport: (result, claim) => this.settle(result, claim) };
  }

  /** Asks the superseder (if the task names one) and claims the others. Never throws. */
  static async form(claim: ClaimResponse, options: SupersedingOptions): Promise<SupersedingGroup> {
    const taskId = claim.status.taskId;
    const url = (claim.task.payload as { supersederUrl?: unknown } | undefined)?.supersederUrl;
    if (url === undefined || url === null || url === '') return new SupersedingGroup(options, claim, [], []);
    const alone = (why: string) => {
      options.log.warn('superseder not used', { taskId, supersederUrl: String(url), reason: why });
      return new SupersedingGroup(options, claim, [], [{ level: 'warn', text: `Superseding: ${why}; this task runs alone.` }]);
    };
    if (typeof url !== 'string') return alone('payload.supersederUrl is not a string');
    const answer = await fetchSupersedes(url, taskId, { timeoutMs: options.timeoutMs });
    if (!answer.ok) return alone(`the superseder at ${url} could not be used: ${answer.reason}`);
    if (answer.taskIds.length === 0) {
      return new SupersedingGroup(options, claim, [], [{ level: 'info', text: 'Superseding: the superseder lists no tasks; this task runs alone.' }]);
    }
    const position = answer.taskIds.indexOf(taskId);
    if (position < 0) return alone(`the superseder's list (${answer.taskIds.join(', ')}) does not include this task`);

    // Claim the others, in the list's order; the claimed task is held already.
    const held = new Map<string, ClaimResponse>([[taskId, claim]]);
    const lines: RunCompanion['logLines'] = [];
    await Promise.all(answer.taskIds.filter((t) => t !== taskId).map(async (other) => {
      try {
        const c = await options.queue.claimTask(other, 0, { workerGroup: options.workerGroup, workerId: options.workerId }) as ClaimResponse;
        held.set(other, c);
        options.log.info('claimed superseding task', { taskId: other, runId: c.runId, claimedFor: taskId });
      } catch (err) {
        options.log.info('could not claim a task the superseder listed', { taskId: other, claimedFor: taskId, error: (err as Error).message });
        lines.push({ level: 'info', text: `Superseding: task ${other} could not be claimed (${(err as Error).message.split('\n')[0]}); it is left alone.` });
      }
    }));
    const order = answer.taskIds.filter((t) => held.has(t));
    const primaryId = order.at(-1)!;
    const primary = held.get(primaryId)!;
    const secondaries = order.slice(0, -1).map((t) => new TaskClaim(options.rootUrl, held.get(t)!));
    if (primaryId !== taskId) {
      lines.unshift({ level: 'info', text: `Superseding: this worker claimed task ${taskId}; the superseder lists this task after it, so this task runs in its place.` });
    }
    if (secondaries.length) {
      lines.push({ level: 'info', text: `Superseding: this task supersedes ${secondaries.map((s) => s.taskId).join(', ')}; once it is reported they are resolved superseded, each with public/superseded-by.json naming this task.` });
    }
    options.log.info('superseding', { claimed: taskId, primary: primaryId, secondaries: secondaries.map((s) => s.taskId) });
    return new SupersedingGroup(options, primary, secondaries, lines);
  }

  /** Resolves every secondary still held: superseded (the primary was resolved) or worker-shutdown. */
  async settle(result: PrimaryResult, primary?: TaskClaim): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    const { log } = this.#options;
    for (const s of this.#secondaries) s.reclaimer.stop();
    const held = this.#secondaries.filter((s) => !s.gone);
    if (!held.length) return;
    const primaryRef = { taskId: this.primary.status.taskId, runId: this.primary.runId };
    const superseded: { taskId: string; runId: number }[] = [];
    await Promise.all(held.map(async ({ claim }) => {
      const ids = { taskId: claim.taskId, runId: claim.runId };
      const reason = result === 'resolved' ? 'superseded' : 'worker-shutdown';
      try {
        const reported = await reportSecondary(claim, reason);
        log.info('task resolved', { ...ids, taskState: `exception/${reported}`, supersededBy: primaryRef.taskId });
      } catch (err) {
        this.#options.journal?.remove(claim.taskId, claim.runId);
        // Not fatal: the claim runs out and the queue retries the task, or (409) it was
        // resolved meanwhile (cancelled): then it gets no superseded-by.json either.
        log.warn('could not resolve a superseded task', { ...ids, primary: primaryRef.taskId, error: (err as Error).message });
        return;
      }
      this.#options.journal?.remove(claim.taskId, claim.runId);
      if (reason !== 'superseded') return;
      superseded.push(ids);
      // After the report, as docker-worker did: the queue takes artifacts of a run resolved
      // exception for a while, and a run cancelled meanwhile was never reported superseded.
      await this.#publisher(claim).uploadData(JSON.stringify(primaryRef), { name: SUPERSEDED_BY_ARTIFACT, expires: artifactExpiry(claim.claim), contentType: 'application/json' })
        .catch((err: Error) => log.warn('could not upload superseded-by.json', { ...ids, error: err.message }));
    }));
    if (result === 'resolved' && primary && superseded.length) {
      const list = held.map((s) => ({ taskId: s.claim.taskId, runId: s.claim.runId })).filter((r) => superseded.some((x) => x.taskId === r.taskId));
      try {
        await this.#publisher(primary).uploadData(JSON.stringify(list), { name: SUPERSEDES_ARTIFACT, expires: artifactExpiry(primary.claim), contentType: 'application/json' });
      } catch (err) {
        log.error('could not upload supersedes.json', { taskId: primary.taskId, runId: primary.runId, error: (err as Error).message });
      }
    }
  }

  #publisher(claim: TaskClaim): ArtifactPublisher {
    const o = this.#options;
    return new ArtifactPublisher({
      rootUrl: o.rootUrl, taskId: claim.taskId, runId: claim.runId, credentials: () => claim.credentials,
      storageType: o.storageType, retry: { retries: o.uploadRetries }, tmpDir: o.tmpDir,
    });
  }
}
