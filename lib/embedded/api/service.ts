// One embedded service = its API reference + a handler per entry name. This module does
// what taskcluster-lib-api does for the real services: route matching, JSON body parsing,
// input/output validation against the official schemas, Hawk authentication, scope
// authorization from the reference's scope expression, and Taskcluster error bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { apiReference, schemaId, validateAgainst, type ReferenceEntry } from './references.ts';
import { ApiError } from './errors.ts';
import { authenticate, type AuthBackend } from './hawk-auth.ts';
import { expandTemplate, assertSatisfies, satisfies, MissingParam, type Params, type ScopeExpression } from './scope-expression.ts';
import type { WorkerLog } from '../../log/worker-log.ts';

export interface ApiRequest {
  /** Route parameters, URL-decoded. */
  params: Record<string, string>;
  query: Record<string, string>;
  body: any;
  clientId: string | undefined;
  /** Expanded scopes of the caller (after authorizedScopes). */
  scopes: string[];
  /** Checks the entry's scope expression with these extra template parameters; throws 403. */
  authorize(extra?: Params): void;
  /** Whether the caller satisfies an arbitrary expression. */
  satisfies(expr: ScopeExpression): boolean;
  raw: IncomingMessage;
  rootUrl: string;
}

/** A non-200 reply, or one with headers. Plain return values are 200 JSON bodies. */
export class Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  constructor(status: number, body: unknown, headers: Record<string, string> = {}) {
    this.status = status; this.body = body; this.headers = headers;
  }
}

export type Handler = (req: ApiRequest) => Promise<unknown> | unknown;

export interface ServiceOptions {
  name: string;
  handlers: Record<string, Handler>;
  auth: AuthBackend;
  log: WorkerLog;
  rootUrl: () => string;
  /** Settles when the store's changes so far are committed (store.ts durable()); default: at once. */
  durable?: () => Promise<void>;
  maxBodyBytes?: number;
}

interface CompiledRoute { entry: ReferenceEntry; regex: RegExp; params: string[]; literalLength: number }

/**
 * Parameters that may hold raw slashes: those the real services declare as `:param(*)`
 * (artifact and object names, and a few ids that used to be two path segments). Every
 * other parameter is one path segment (clients send slashes in it as %2F), so a malformed
 * sub-path is a 404, not a parameter that fails validation.
 */
const SLASHED_PARAMS: Record<string, string> = {
  'queue.claimWork': 'taskQueueId',
  'queue.pendingTasks': 'taskQueueId',
  'purge-cache.purgeCache': 'workerPoolId',
  'purge-cache.purgeRequests': 'workerPoolId',
  'auth.awsS3Credentials': 'prefix',
};
/** Optional parameters (`:namespace?` in the real index: the root namespace is empty). */
const OPTIONAL_PARAMS: Record<string, string> = {
  'index.listNamespaces': 'namespace',
  'index.listTasks': 'namespace',
};

function compileRoute(service: string, entry: ReferenceEntry): CompiledRoute {
  const params: string[] = [];
  const parts = entry.route.split(/(<[^<>]+>)/).filter((p) => p !== '');
  const key = `${service}.${entry.name}`;
  let source = '';
  for (const p of parts) {
    const m = /^<([^<>]+)>$/.exec(p);
    if (m) {
      const param = m[1];
      params.push(param);
      const slashed = param === 'name' || SLASHED_PARAMS[key] === param;
      const optional = OPTIONAL_PARAMS[key] === param;
      source += `(${slashed ? '.' : '[^/]'}${optional ? '*' : '+'})`;
    } else {
      source += p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  const literalLength = parts.filter((p) => !p.startsWith('<')).join('').length;
  return { entry, regex: new RegExp(`^${source}$`), params, literalLength };
}

const HEALTH = new Set(['ping', 'lbheartbeat', 'version', 'heartbeat']);

export class EmbeddedService {
  readonly name: string;
  private readonly routes: CompiledRoute[];
  private readonly options: ServiceOptions;

  constructor(options: ServiceOptions) {
    this.options = options;
    this.name = options.name;
    const reference = apiReference(options.name);
    this.routes = reference.entries.map((e) => compileRoute(options.name, e)).sort((a, b) => b.literalLength - a.literalLength);
  }

  /** Handles a request whose path (after /api/<service>/v1) is `path`. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.dispatch(req, path, url);
    } catch (err) {
      reply = this.errorReply(err, req);
    }
    // Nothing is answered before the changes it reports are committed (store.ts: group commit).
    try {
      await this.options.durable?.();
    } catch (err) {
      reply = this.errorReply(err, req);
    }
    send(res, reply);
  }

  private errorReply(err: unknown, req: IncomingMessage): Reply {
    if (err instanceof ApiError) {
      return new Reply(err.status, {
        code: err.code,
        message: err.message,
        requestInfo: { method: req.method, path: req.url, time: new Date().toISOString(), ...err.details },
      });
    }
    this.options.log.error('embedded service error', { service: this.name, url: req.url, error: (err as Error)?.stack ?? String(err) });
    return new Reply(500, { code: 'InternalServerError', message: 'Internal server error', requestInfo: { method: req.method, path: req.url, time: new Date().toISOString() } });
  }

  private match(method: string, path: string): { route: CompiledRoute; params: Record<string, string> } | { methodMismatch: true } | undefined {
    let methodMismatch = false;
    for (const route of this.routes) {
      const m = route.regex.exec(path);
      if (!m) continue;
      if (route.entry.method.toUpperCase() !== method) { methodMismatch = true; continue; }
      const params: Record<string, string> = {};
      try {
        route.params.forEach((p, i) => { params[p] = decodeURIComponent(m[i + 1]); });
      } catch {
        throw new ApiError('InputError', `Malformed URL encoding in ${path}`);
      }
      return { route, params };
    }
    return methodMismatch ? { methodMismatch: true } : undefined;
  }

  private async dispatch(req: IncomingMessage, path: string, url: URL): Promise<Reply> {
    const method = (req.method ?? 'GET').toUpperCase();
    const found = this.match(method === 'HEAD' ? 'GET' : method, path);
    if (!found) throw new ApiError('ResourceNotFound', `No such API endpoint: ${method} /api/${this.name}/v1${path}`);
    if ('methodMismatch' in found) throw new ApiError('ResourceNotFound', `Method ${method} is not supported for /api/${this.name}/v1${path}`);
    const { route, params } = found;
    const entry = route.entry;
    const handler = this.options.handlers[entry.name] ?? (HEALTH.has(entry.name) ? healthHandler(entry.name) : undefined);
    if (!handler) throw new ApiError('NotImplemented', `${this.name}.${entry.name} is not implemented by the embedded deployment`);

    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) {
      if (k === 'bewit') continue;
      if (!entry.query?.includes(k)) throw new ApiError('InputError', `Query parameter ${k} is not allowed for ${entry.name}`);
      query[k] = v;
    }
    const raw = await readBody(req, this.options.maxBodyBytes ?? 10 * 1024 * 1024);
    let body: unknown;
    if (entry.input) {
      // As the real services: a body must say it is JSON.
      const contentType = String(req.headers['content-type'] ?? '');
      if (contentType.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
        throw new ApiError('MalformedPayload', `Payload must be JSON with content-type: application/json got content-type: ${contentType || 'none'}`);
      }
      if (raw.length === 0) throw new ApiError('InputValidationError', 'Request body is required and must be JSON');
      try { body = JSON.parse(raw.toString('utf8')); } catch (e) {
        if (e instanceof RangeError) throw new ApiError('InputValidationError', `Request body is nested too deeply; at most ${MAX_BODY_DEPTH} levels of objects and arrays are accepted`);
        throw new ApiError('InputValidationError', `Request body is not valid JSON: ${(e as Error).message}`);
      }
      if (nestingDepth(body) > MAX_BODY_DEPTH) {
        throw new ApiError('InputValidationError', `Request body is nested more than ${MAX_BODY_DEPTH} levels deep; at most ${MAX_BODY_DEPTH} levels of objects and arrays are accepted`);
      }
      const errors = validateAgainst(schemaId(this.name, entry.input), body);
      if (errors.length) {
        throw new ApiError('InputValidationError',
          `Request payload must match the schema ${entry.input}:\n${errors.join('\n')}`, { errors });
      }
    }
    const who = await authenticate(req, this.options.auth, url);
    let authorized = entry.scopes === undefined || entry.scopes === null;
    const apiReq: ApiRequest = {
      params, query, body, clientId: who.clientId, scopes: who.scopes, raw: req, rootUrl: this.options.rootUrl(),
      authorize: (extra: Params = {}) => {
        if (entry.scopes === undefined || entry.scopes === null) { authorized = true; return; }
        const expr = expandTemplate(entry.scopes, { ...params, ...extra });
        assertSatisfies(who.clientId, who.scopes, expr);
        authorized = true;
      },
      satisfies: (expr) => satisfies(who.scopes, expr),
    };
    // Authorize up front when the route parameters fill the template; otherwise the
    // handler must call authorize() with the values it looked up.
    if (!authorized) {
      try { apiReq.authorize(); } catch (e) { if (!(e instanceof MissingParam)) throw e; }
    }
    const result = await handler(apiReq);
    if (!authorized) throw new Error(`${this.name}.${entry.name} did not authorize the request`);
    const reply = result instanceof Reply ? result : new Reply(200, result);
    if (reply.status === 200 && typeof entry.output === 'string' && entry.output !== 'blob') {
      const errors = validateAgainst(schemaId(this.name, entry.output), reply.body);
      if (errors.length) throw new Error(`${this.name}.${entry.name} produced output not matching ${entry.output}: ${errors.join('; ')}`);
    }
    return reply;
  }
}

function healthHandler(name: string): Handler {
  return () => {
    if (name === 'version') return { version: 'embedded' };
    if (name === 'ping') return { alive: true, uptime: process.uptime() };
    return {};
  };
}

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new ApiError('InputTooLarge', `Request body is larger than the limit of ${limit} bytes`));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent) { res.end(); return; }
  const payload = reply.body === undefined ? '' : JSON.stringify(reply.body, null, 2);
  res.writeHead(reply.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    ...reply.headers,
  });
  res.end(payload);
}

/**
 * How deeply a request body may nest. The real queue takes a 3,000-level payload (and
 * taskcluster-client cannot send 10,000); the services clone, store and walk bodies, so deeper
 * input is refused with 400 here before anything recurses into it.
 */
export const MAX_BODY_DEPTH = 4000;

/** The nesting depth of a parsed JSON value (MAX_BODY_DEPTH + 1 once past it), counted without recursion. */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const inside = depth + 1;
    if (inside > deepest) deepest = inside;
    if (deepest > MAX_BODY_DEPTH) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, inside]);
  }
  return deepest;
}
