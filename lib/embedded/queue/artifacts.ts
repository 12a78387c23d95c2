// PLACEHOLDER until the artifacts helper writes this file: no artifact endpoints yet.
import type { EmbeddedContext } from '../context.ts';
import type { Handler } from '../api/service.ts';
import type { RunLookup } from './run-lookup.ts';

export function artifactHandlers(_ctx: EmbeddedContext, _runs: RunLookup): Record<string, Handler> {
  return {};
}
