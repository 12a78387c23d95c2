// Why a pull failed, from the engine's error: decides whether a retry can help.
import { EngineError } from './engine-error.ts';

export type PullFailureKind =
  | 'auth' // the registry refused (missing or wrong credentials): retrying cannot help
  | 'not-found' // no such repository, tag or digest: retrying cannot help
  | 'invalid' // the engine rejected the request itself
  | 'engine' // the Docker engine is not reachable
  | 'transient'; // network, registry or server trouble: worth retrying

const authPatterns = /no basic auth credentials|unauthorized|authentication required|incorrect username or password|access (to the resource )?is denied|denied: |forbidden/i;
const notFoundPatterns = /manifest unknown|not found|repository does not exist|name unknown|pull access denied/i;

export function classifyPullFailure(err: unknown): PullFailureKind {
  if (err instanceof EngineError) {
    if (err.kind === 'unreachable') return 'engine';
    // Drop a leading 'Head "http://host/v2/<repo>/manifests/<tag>": ' so names never match.
    const said = err.detail.replace(/^[A-Z]+ "[^"]*":\s*/, '');
    if (authPatterns.test(said)) return 'auth';
    if (err.kind === 'not-found' || notFoundPatterns.test(said)) return 'not-found';
    if (err.kind === 'bad-request') return 'invalid';
  }
  return 'transient';
}

export function isRetryable(kind: PullFailureKind): boolean {
  return kind === 'transient';
}
