// PLACEHOLDER until the purge-cache service is written: no handlers yet.
import type { EmbeddedContext, ServiceParts } from '../context.ts';

export function purgeCacheService(_ctx: EmbeddedContext): ServiceParts {
  return { handlers: {} };
}
