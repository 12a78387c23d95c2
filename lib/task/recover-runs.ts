// Crash recovery: the runs an earlier worker process held when it died (lib/queue/run-journal.ts)
// are resolved at the next start instead of at claim expiry. For each run still within its
// claim: its container is already gone (the startup sweep removes every container labelled with
// this workerId), so the log it left is completed with a line saying what happened, uploaded as
// the run's backing log (live.log linked to it), and the run is reported
// exception/worker-shutdown with the run's own stored credentials: the queue reruns the task at
// once. A run whose claim has already expired is the queue's (claim-expired, then a retry) and
// is only forgotten. Nothing here stops the worker from starting: every failure is logged.
import { appendFileSync, existsSync, rmSync } from 'node:fs';
import { ArtifactPublisher, type StorageType } from '../artifacts/upload.ts';
import { publishBackingLogFile } from '../log/backing-log.ts';
import { formatErrorLine } from '../log/format.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import { statusCodeOf } from '../retry/with-retries.ts';
import type { RunJournal } from '../queue/run-journal.ts';
import { queueClient } from '../queue/taskcluster.ts';

export const RECOVERY_LINE = 'The worker stopped unexpectedly while this task ran (its process was killed, or the machine restarted). ' +
  'The run is resolved exception/worker-shutdown so that the queue runs the task again.';

export interface RecoveryOptions {
  journal: RunJournal;
  /** The deployment now (an embedded one may listen on another port than before the crash). */
  rootUrl: string;
  log: WorkerLog;
  storageType: StorageType;
  uploadRetries: number;
  tmpDir: string;
  now?: () => number;
}

export interface RecoveryReport { resolved: number; expired: number; failed: number }

export async function recoverRuns(options: RecoveryOptions): Promise<RecoveryReport> {
  const { journal, log } = options;
  const now = options.now ?? Date.now;
  const report: RecoveryReport = { resolved: 0, expired: 0, failed: 0 };
  const { entries, unreadable } = journal.list();
  for (const file of unreadable) {
    log.warn('unreadable run journal entry removed', { file });
    rmSync(file, { force: true });
  }
  for (const entry of entries) {
    const ids = { taskId: entry.taskId, runId: entry.runId };
    if (Date.parse(entry.takenUntil) <= now()) {
      log.info('run left by an earlier process: its claim has expired, the queue resolves it', { ...ids, takenUntil: entry.takenUntil });
      journal.remove(entry.taskId, entry.runId);
      report.expired++;
      continue;
    }
    const publisher = new ArtifactPublisher({
      rootUrl: options.rootUrl, taskId: entry.taskId, runId: entry.runId, credentials: () => entry.credentials,
      storageType: options.storageType, retry: { retries: options.uploadRetries }, tmpDir: options.tmpDir,
    });
    try {
      if (entry.logPath && entry.logNames && entry.expires && existsSync(entry.logPath)) {
        appendFileSync(entry.logPath, formatErrorLine(RECOVERY_LINE));
        await publishBackingLogFile(publisher, entry.logPath, entry.expires, entry.logNames);
      }
    } catch (err) {
      log.warn('could not upload the log of a run left by an earlier process', { ...ids, error: (err as Error).message });
    }
    try {
      await queueClient({ rootUrl: options.rootUrl, credentials: entry.credentials }).reportException(entry.taskId, entry.runId, { reason: 'worker-shutdown' });
      log.info('resolved a run left by an earlier process', { ...ids, reason: 'worker-shutdown', containerId: entry.containerId });
      report.resolved++;
    } catch (err) {
      // 409: the queue resolved it already (cancelled, deadline); anything else: claim expiry will.
      const level = statusCodeOf(err) === 409 ? 'info' : 'warn';
      log[level]('could not resolve a run left by an earlier process', { ...ids, error: (err as Error).message, statusCode: statusCodeOf(err) });
      if (level === 'warn') report.failed++;
    }
    journal.remove(entry.taskId, entry.runId);
  }
  return report;
}
