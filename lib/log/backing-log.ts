// The two log artifacts of a task run, as docker-worker published them:
//  1. at the start, `public/logs/live.log` (payload.log) is a `reference` to the live log URL;
//  2. at the end, the backing log is uploaded as `public/logs/live_backing.log`, and live.log
//     becomes a `link` to it, so the same name reads the complete log once the task is done.
import type { ArtifactPublisher, UploadResult } from '../artifacts/upload.ts';
import type { TaskLog } from './task-log.ts';

export const DEFAULT_LIVE_LOG_NAME = 'public/logs/live.log';
export const DEFAULT_BACKING_LOG_NAME = 'public/logs/live_backing.log';
export const LOG_CONTENT_TYPE = 'text/plain; charset=utf-8';

export interface LogArtifactNames {
  /** payload.log, default `public/logs/live.log`. */
  live?: string;
  /** Default `public/logs/live_backing.log`. */
  backing?: string;
}

/** Step 1: live.log redirects readers to the worker's live log server. */
export async function publishLiveLog(
  publisher: ArtifactPublisher, liveUrl: string, expires: Date | string, names: LogArtifactNames = {},
): Promise<void> {
  await publisher.createReferenceArtifact(names.live ?? DEFAULT_LIVE_LOG_NAME, liveUrl, expires, LOG_CONTENT_TYPE);
}

/**
 * Step 2: closes the log, uploads the complete backing log (gzip-encoded where the storage
 * allows it: s3; object storage takes identity encoding only), then turns live.log into a link
 * to it. Returns the backing log upload.
 */
export async function publishBackingLog(
  publisher: ArtifactPublisher, taskLog: TaskLog, expires: Date | string, names: LogArtifactNames = {},
): Promise<UploadResult> {
  await taskLog.close();
  return publishBackingLogFile(publisher, taskLog.path, expires, names);
}

/** Step 2 for a complete log file (also what crash recovery uploads of a run an earlier process held). */
export async function publishBackingLogFile(
  publisher: ArtifactPublisher, file: string, expires: Date | string, names: LogArtifactNames = {},
): Promise<UploadResult> {
  const backing = names.backing ?? DEFAULT_BACKING_LOG_NAME;
  const uploaded = await publisher.uploadFile(file, {
    name: backing, expires, contentType: LOG_CONTENT_TYPE, contentEncoding: 'gzip',
  });
  await publisher.createLinkArtifact(names.live ?? DEFAULT_LIVE_LOG_NAME, backing, expires, LOG_CONTENT_TYPE);
  return uploaded;
}
