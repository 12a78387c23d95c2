// The bulkLog feature (docker-worker's `bulk_log`): the whole task log, gzipped, as the
// artifact `public/logs/terminal_bulk.log.gz` (content type application/gzip, stored as the
// gzip bytes themselves). Uploaded once the log is complete: it holds the footer too.
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { ArtifactPublisher, UploadResult } from '../artifacts/upload.ts';
import type { TaskLog } from '../log/task-log.ts';
import { BULK_LOG_NAME } from './plan.ts';

export async function uploadBulkLog(publisher: ArtifactPublisher, taskLog: TaskLog, expires: string): Promise<UploadResult> {
  await taskLog.close(); // every pending write is on disk before the file is read
  const bytes = createGzip();
  pipeline(createReadStream(taskLog.path), bytes).catch((err: Error) => bytes.destroy(err));
  return publisher.uploadData(bytes, { name: BULK_LOG_NAME, expires, contentType: 'application/gzip', contentEncoding: 'identity' });
}
