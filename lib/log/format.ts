// The task log's line formats, exactly as docker-worker wrote them: task owners and tools
// (Treeherder among them) grep for these lines, so the text must not drift.
//   [taskcluster 2026-11-23 10:00:00.000Z] <message>      (fmtLog: ISO time with 'T' -> ' ')
//   \n[taskcluster:error] <message>                      (fmtErrorLog: always starts a new line)
import os from 'node:os';
import util from 'node:util';

/** `[taskcluster <time>] <message>\n`, the worker's ordinary task log line. */
export function formatLogLine(message: string, now: Date = new Date()): string {
  const ts = now.toISOString().replace('T', ' ');
  return `[taskcluster ${ts}] ${message}\n`;
}

/**
 * `\n[taskcluster:error] <message>\n`. The leading newline puts the marker at the start of a
 * line even when the container's last output did not end with one (Treeherder relies on it).
 */
export function formatErrorLine(message: string): string {
  return `\n[taskcluster:error] ${message}\n`;
}

/** `\n[taskcluster:warn] <message>\n`, same shape as the error line. */
export function formatWarningLine(message: string): string {
  return `\n[taskcluster:warn] ${message}\n`;
}

export interface LogHeaderFields {
  taskId: string;
  workerId: string;
  workerGroup: string;
  workerNodeType: string;
  /** `provisionerId/workerType`. */
  workerPool: string;
  /** docker-worker printed `Worker Type:`; kept so old greps keep matching. */
  workerType?: string;
  workerVersion: string;
  publicIp: string;
  hostname?: string;
  /** payload.cache: cache name -> mount path. */
  caches?: Record<string, string>;
}

/** The header written before anything else, each line in `formatLogLine` form, then `\r\n`. */
export function formatLogHeader(fields: LogHeaderFields, now: Date = new Date()): string {
  const lines = [
    `Task ID: ${fields.taskId}`,
    `Worker ID: ${fields.workerId}`,
    `Worker Group: ${fields.workerGroup}`,
    `Worker Node Type: ${fields.workerNodeType}`,
    ...(fields.workerType !== undefined ? [`Worker Type: ${fields.workerType}`] : []),
    `Worker Pool: ${fields.workerPool}`,
    `Worker Version: ${fields.workerVersion}`,
    `Public IP: ${fields.publicIp}`,
    `Hostname: ${fields.hostname ?? os.hostname()}`,
  ];
  for (const [name, mountPath] of Object.entries(fields.caches ?? {})) {
    lines.push(`using cache "${name}" -> ${mountPath}`);
  }
  return lines.map((line) => formatLogLine(line, now)).join('') + '\r\n';
}

export const TASK_STARTING = '=== Task Starting ===';
export const TASK_FINISHED = '=== Task Finished ===';

/**
 * `Successful task run with exit code: 0 completed in 1.234 seconds` (or `Unsuccessful ...`),
 * as a log line. Formatted with util.format's %d like docker-worker, so the duration keeps its
 * fractional part and an infrastructure failure shows exit code -1.
 */
export function formatLogFooter(success: boolean, exitCode: number, startedAt: Date, finishedAt: Date, now: Date = finishedAt): string {
  const seconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
  const text = util.format('%s task run with exit code: %d completed in %d seconds',
    success ? 'Successful' : 'Unsuccessful', exitCode, seconds);
  return formatLogLine(text, now);
}
