// PLACEHOLDER until the index service is written: no handlers yet.
import type { EmbeddedContext, ServiceParts } from '../context.ts';

export function indexService(_ctx: EmbeddedContext): ServiceParts {
  return { handlers: {} };
}
