// bulkLog (docker-worker's `bulk_log`): the whole task log, gzipped, as the artifact
// `public/logs/terminal_bulk.log.gz` (content type application/gzip, stored as the gzip bytes
// themselves). Uploaded once the log is complete (it holds the footer too), after the
// backing log; not for a cancelled run. A failed upload makes the run exception/internal-error.
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { NOTHING_TO_CLEAN, type Feature } from './feature.ts';

export const BULK_LOG_NAME = 'public/logs/terminal_bulk.log.gz';

export interface BulkLogOptions {
  artifactName: string;
}

export const bulkLog: Feature<BulkLogOptions> = {
  name: 'bulkLog',
  defaultEnabled: false,
  plan: () => ({ options: { artifactName: BULK_LOG_NAME }, reservedArtifacts: [BULK_LOG_NAME] }),
  forTask: (ctx) => ({
    async logComplete(log) {
      if (log.cancelled) return;
      const bytes = createGzip();
      pipeline(createReadStream(log.path), bytes).catch((err: Error) => bytes.destroy(err));
      try {
        await ctx.publisher.uploadData(bytes, { name: ctx.options.artifactName, expires: ctx.plan.taskExpires, contentType: 'application/gzip', contentEncoding: 'identity' });
      } catch (err) {
        ctx.log.error('could not upload the bulk log', { taskId: ctx.taskId, runId: ctx.runId, error: (err as Error).message });
        throw new Error(`could not upload the bulk log: ${(err as Error).message}`, { cause: err });
      }
    },
    cleanup: NOTHING_TO_CLEAN,
  }),
};
