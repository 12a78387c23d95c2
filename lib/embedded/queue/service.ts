// The embedded queue service: tasks, runs, claims and resolution, worker metadata, and the
// artifact endpoints (./artifacts.ts), over one QueueCore per deployment.
import type { EmbeddedContext, ServiceParts } from '../context.ts';
import type { Handler } from '../api/service.ts';
import { QueueCore } from './queue-core.ts';
import { WorkerStore } from './worker-store.ts';
import { createTaskHandler } from './create-task.ts';
import { claimHandlers } from './claim-work.ts';
import { resolutionHandlers } from './resolution.ts';
import { taskListingHandlers } from './task-listings.ts';
import { taskGroupHandlers } from './task-group-handlers.ts';
import { workerHandlers } from './worker-handlers.ts';
import { sweepQueue } from './sweeper.ts';
import { sweepExpiredArtifacts } from './artifacts.ts';
import { runLookup } from './run-lookup.ts';
import { artifactHandlers } from './artifacts.ts';

export function queueService(ctx: EmbeddedContext): ServiceParts {
  const core = new QueueCore(ctx.db, ctx.log, ctx.rootUrl);
  const workers = new WorkerStore(ctx.db);
  const handlers: Record<string, Handler> = {
    createTask: createTaskHandler(core),
    ...claimHandlers(ctx, core, workers),
    ...resolutionHandlers(core),
    ...taskListingHandlers(core),
    ...taskGroupHandlers(core),
    ...workerHandlers(ctx.db, workers),
    ...artifactHandlers(ctx, runLookup(core.tasks)),
  };
  return {
    handlers,
    sweep: async () => { await sweepQueue(core, workers); await sweepExpiredArtifacts(ctx); },
    close: () => core.waiters.close(),
  };
}
