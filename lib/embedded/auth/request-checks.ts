// Checks on the auth service's inputs that the JSON schemas do not make: route and query
// parameter patterns, static clients, scopes ending in `**`, paging arguments.
import { ApiError, inputError } from '../api/errors.ts';

const CLIENT_ID = /^[A-Za-z0-9!@/:.+|_-]+$/;
const ROLE_ID = /^[\x20-\x7e]+$/;
const LIMIT = /^[0-9]+$/;

export function checkClientId(clientId: string, what = 'clientId'): void {
  if (!CLIENT_ID.test(clientId)) {
    throw inputError(`${what} "${clientId}" is not valid: it must match ${CLIENT_ID.source}`);
  }
}

export function checkRoleId(roleId: string): void {
  if (!ROLE_ID.test(roleId)) {
    throw inputError(`roleId "${roleId}" is not valid: it must be printable ASCII (${ROLE_ID.source})`);
  }
}

/** Static clients (`static/...`) come from the deployment's configuration, not the API. */
export function forbidStaticClient(clientId: string): void {
  if (clientId.startsWith('static/')) {
    throw inputError(`clientId "${clientId}" starts with "static/" which is reserved for statically ` +
      'configured clients. Contact your administrator to change static clients.', { clientId });
  }
}

export function forbidDoubleStar(scopes: readonly string[] | undefined): void {
  const bad = scopes?.find((s) => s.endsWith('**'));
  if (bad !== undefined) throw inputError(`scopes must not end with \`**\` (got "${bad}")`);
}

/** The `limit` query argument: a positive integer, capped; `fallback` when absent or 0. */
export function parseLimit(value: string | undefined, fallback: number, max = 1000): number {
  if (value === undefined || value === '') return fallback;
  if (!LIMIT.test(value)) throw inputError(`limit must be a non-negative integer, got "${value}"`);
  const n = Number(value);
  return n === 0 ? fallback : Math.min(n, max);
}

/** An opaque continuation token naming the last item returned. */
export function encodeContinuation(lastKey: string): string {
  return Buffer.from(JSON.stringify({ after: lastKey }), 'utf8').toString('base64url');
}

export function decodeContinuation(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string') return parsed.after;
  } catch { /* reported below */ }
  throw new ApiError('InputError', 'Invalid continuationToken: pass back the token from the previous response unchanged');
}
