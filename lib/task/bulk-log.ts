// The bulkLog feature: the whole task log, gzipped, as `public/logs/terminal_bulk.log.gz`.
import { createReadStream } from 'node:fs';
import { createGzip } from 'node:zlib';
import type { ArtifactPublisher } from '../artifacts/upload.ts';
import type { TaskLog } from '../log/task-log.ts';
import { BULK_LOG_NAME } from './plan.ts';

export async function uploadBulkLog(publisher: ArtifactPublisher, taskLog: TaskLog, expires: string): Promise<void> {
  const bytes = createReadStream(taskLog.path, { end: Math.max(0, taskLog.bytesOnDisk - 1) }).pipe(createGzip());
  await publisher.uploadData(bytes, { name: BULK_LOG_NAME, expires, contentType: 'application/gzip', contentEncoding: 'identity' });
}
