// PLACEHOLDER until the object service is written: no handlers yet.
import type { EmbeddedContext, ServiceParts } from '../context.ts';

export function objectService(_ctx: EmbeddedContext): ServiceParts {
  return { handlers: {} };
}
