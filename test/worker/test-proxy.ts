// The harness's worker behind a fault-injecting proxy (test/support/fault-proxy.ts).
import winston from 'winston';
import { startWorker } from '../../lib/worker.ts';
import type { WorkerHarness } from '../support/worker.ts';
import type { TestProxy } from '../support/fault-proxy.ts';

/** Starts the harness's worker with its Taskcluster calls going through `proxy`. */
export async function startWorkerBehind(h: WorkerHarness, proxy: TestProxy): Promise<void> {
  const log = winston.createLogger({ level: 'debug', transports: [h.capture] });
  h.worker = await startWorker(h.config, { rootUrl: proxy.url, credentials: h.credentials }, log);
}
