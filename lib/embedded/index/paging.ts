// Keyset paging for list endpoints (`continuationToken` and `limit` query parameters, as
// the real services take them). The token is the sort key of the last row returned, so a
// page never repeats or skips rows when others are added meanwhile.
import { inputError } from '../api/errors.ts';

export interface PageRequest {
  limit: number;
  /** Sort key of the last row of the previous page. */
  after: (string | number)[] | undefined;
}

export function pageRequest(query: Record<string, string>, maxLimit = 1000): PageRequest {
  let limit = maxLimit;
  if (query.limit !== undefined) {
    if (!/^\d+$/.test(query.limit) || Number(query.limit) < 1) throw inputError('limit must be a positive integer');
    limit = Math.min(Number(query.limit), maxLimit);
  }
  let after: (string | number)[] | undefined;
  if (query.continuationToken) {
    try {
      const parsed: unknown = JSON.parse(Buffer.from(query.continuationToken, 'base64url').toString('utf8'));
      if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string' || typeof v === 'number')) throw new Error('shape');
      after = parsed as (string | number)[];
    } catch {
      throw inputError('continuationToken is not valid; pass the token of a previous response unchanged');
    }
  }
  return { limit, after };
}

/** Fetches one row more than the limit to learn whether another page follows. */
export function pageOf<T>(rows: T[], limit: number, keyOf: (row: T) => (string | number)[]): { rows: T[]; continuationToken?: string } {
  if (rows.length <= limit) return { rows };
  const page = rows.slice(0, limit);
  const token = Buffer.from(JSON.stringify(keyOf(page[page.length - 1]))).toString('base64url');
  return { rows: page, continuationToken: token };
}
