// Route parameters and paging of queue requests, checked as the real queue checks them.
import { ApiError } from '../api/errors.ts';
import type { ApiRequest } from '../api/service.ts';

const SLUGID = /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;
const RUN_ID = /^[0-9]+$/;
const TASK_QUEUE_ID = /^[a-zA-Z0-9-_]{1,38}\/[a-z]([-a-z0-9]{0,36}[a-z0-9])?$/;
const IDENTIFIER = /^[a-zA-Z0-9-_]{1,38}$/;

function param(req: ApiRequest, name: string, pattern: RegExp, what: string): string {
  const value = req.params[name] ?? '';
  if (!pattern.test(value)) {
    // As the real services word it (400 InvalidRequestArguments), with what the value must be.
    throw new ApiError('InvalidRequestArguments', `Invalid URL patterns:\nURL parameter '${name}' given as '${value}' must match regular expression: '${pattern}' (${what})`, { [name]: value });
  }
  return value;
}

export const taskIdParam = (req: ApiRequest, name = 'taskId') => param(req, name, SLUGID, 'a slugid (22 characters)');
export const taskQueueIdParam = (req: ApiRequest) =>
  param(req, 'taskQueueId', TASK_QUEUE_ID, '<provisionerId>/<workerType>, e.g. `proj-x/ci`');
export const identifierParam = (req: ApiRequest, name: string) => param(req, name, IDENTIFIER, '1 to 38 characters of a-z A-Z 0-9 - _');

export function runIdParam(req: ApiRequest): number {
  const runId = Number(param(req, 'runId', RUN_ID, 'a non-negative integer'));
  if (runId > 1000) throw new ApiError('InputError', `runId ${runId} is out of range`, { runId });
  return runId;
}

export interface Page { offset: number; limit: number }

/** Reads `continuationToken` and `limit` (default and maximum `max`). */
export function pageOf(req: ApiRequest, max = 1000): Page {
  let limit = max;
  if (req.query.limit !== undefined) {
    if (!/^[0-9]+$/.test(req.query.limit)) throw new ApiError('InputError', 'limit must be a positive integer');
    limit = Math.min(max, Math.max(1, Number(req.query.limit)));
  }
  let offset = 0;
  const token = req.query.continuationToken;
  if (token !== undefined && token !== '') {
    try {
      const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown };
      if (typeof parsed.offset !== 'number' || !Number.isInteger(parsed.offset) || parsed.offset < 0) throw new Error('bad');
      offset = parsed.offset;
    } catch {
      throw new ApiError('InputError', 'continuationToken is not one this service issued; pass the token from the previous page unchanged.');
    }
  }
  return { offset, limit };
}

/** The token for the page after one that returned `count` items (none when it was the last). */
export function nextToken(page: Page, count: number): string | undefined {
  if (count < page.limit) return undefined;
  return Buffer.from(JSON.stringify({ offset: page.offset + count })).toString('base64url');
}

/** Adds `continuationToken` to a listing result when there may be more. */
export function withToken<T extends object>(result: T, page: Page, count: number): T & { continuationToken?: string } {
  const token = nextToken(page, count);
  return token ? { ...result, continuationToken: token } : result;
}
