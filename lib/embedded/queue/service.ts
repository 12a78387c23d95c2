// PLACEHOLDER until the queue service is written: no handlers yet.
import type { EmbeddedContext, ServiceParts } from '../context.ts';

export function queueService(_ctx: EmbeddedContext): ServiceParts {
  return { handlers: {} };
}
