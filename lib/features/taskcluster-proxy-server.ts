// The taskclusterProxy's HTTP server: what a task reaches as http://taskcluster/. It speaks the
// contract of the Taskcluster monorepo's tools/taskcluster-proxy:
//   /api/<service>/<version>/<path>   -> <rootUrl>/api/<service>/<version>/<path>
//   /<service>/<version>/<path>       -> the same (the legacy layout, before rootUrls)
//   /bewit (body: a URL)              -> 303 to that URL signed with a bewit (valid one hour)
//   /credentials                      -> refused: the worker hands over new credentials itself
// Each forwarded request is signed (Hawk) with the run's current temporary credentials; the
// body is streamed both ways (never buffered), redirects and error answers are passed to the
// task as the service gave them. Only the services of a Taskcluster deployment are forwarded:
// anything else (an unknown service, a host name) is answered 404 by the proxy itself, so the
// task's credentials are never sent to another host. A connection from an address `allows`
// refuses is closed before a byte is read.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import Hawk from '@hapi/hawk';
import type { TaskCredentials } from '../task/types.ts';

/** The services of a Taskcluster deployment (taskcluster-lib-urls' names). */
export const TASKCLUSTER_SERVICES: readonly string[] = [
  'auth', 'github', 'hooks', 'index', 'notify', 'object', 'purge-cache', 'queue', 'secrets', 'worker-manager',
];

export const BEWIT_TTL_SECONDS = 3600;
const MAX_BEWIT_BODY_BYTES = 64 * 1024;

/** Request and response headers that belong to one connection, not to the message. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade',
]);

export interface TaskclusterProxyServerOptions {
  rootUrl: string;
  /** The credentials to sign with, asked for every request. */
  credentials(): TaskCredentials;
  /** Whether a connection from this address may use the proxy. */
  allows(address: string | undefined): boolean;
  /** Sent as X-Taskcluster-Proxy-Version. */
  version: string;
  /** Told about refused connections and failed upstream requests. */
  onProblem?(message: string, details: Record<string, unknown>): void;
}

export class ProxyListenError extends Error {}

export class TaskclusterProxyServer {
  readonly #options: TaskclusterProxyServerOptions;
  readonly #server: http.Server;
  readonly #agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  readonly #root: URL;

  constructor(options: TaskclusterProxyServerOptions) {
    this.#options = options;
    this.#root = new URL(options.rootUrl);
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket: Socket) => {
      if (options.allows(socket.remoteAddress)) return;
      options.onProblem?.('taskclusterProxy refused a connection from outside its task', { from: socket.remoteAddress });
      socket.destroy();
    });
  }

  /** Listens on `host:port` (port 0: any); rejects with a ProxyListenError saying what to check. */
  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? `something else already listens on ${host}:${port}`
          : err.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this host`
          : err.code === 'EACCES' ? `the worker may not listen on port ${port} (it needs root or CAP_NET_BIND_SERVICE)`
          : err.message;
        reject(new ProxyListenError(why, { cause: err }));
      };
      this.#server.once('error', failed);
      this.#server.listen({ host, port, exclusive: true }, () => { this.#server.off('error', failed); resolve(); });
    });
    return this.#server.address() as AddressInfo;
  }

  /** Stops listening and drops every connection (the run is over). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    this.#agents.http.destroy();
    this.#agents.https.destroy();
    await closed;
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    const [path = '/', query] = splitQuery(url);
    this.#commonHeaders(res);
    if (path === '/bewit' || path.startsWith('/bewit/')) return void this.#bewit(req, res);
    if (path === '/credentials' || path.startsWith('/credentials/')) {
      return answer(res, req.method === 'PUT' ? 403 : 405, 'The worker updates the proxy\'s credentials itself after every reclaim; a task cannot set them.\n');
    }
    const target = this.#target(path, query);
    if (typeof target === 'string') return answer(res, 404, target);
    this.#forward(req, res, target);
  }

  /** The upstream URL for a path, or the 404 message. */
  #target(path: string, query: string | undefined): URL | string {
    const parts = path.split('/').slice(1);
    const [service, version, ...rest] = parts[0] === 'api' ? parts.slice(1) : parts;
    const known = TASKCLUSTER_SERVICES.join(', ');
    if (!service) return `The taskclusterProxy forwards /api/<service>/<version>/<path> (or /<service>/<version>/<path>) to the Taskcluster services (${known}).\n`;
    if (!TASKCLUSTER_SERVICES.includes(service)) {
      return `Unknown Taskcluster service "${service}": the taskclusterProxy forwards requests to ${known} only.\n`;
    }
    if (!version) return `Missing API version: use /api/${service}/v1/<path>.\n`;
    const base = this.#root.href.replace(/\/$/, '');
    return new URL(`${base}/api/${service}/${version}/${rest.join('/')}${query !== undefined ? `?${query}` : ''}`);
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse, target: URL): void {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (HOP_BY_HOP.has(name) || name === 'host' || name === 'authorization' || value === undefined) continue;
      headers[name] = value;
    }
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    // As tools/taskcluster-proxy: a body without a Content-Type is JSON.
    if (hasBody && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    headers.authorization = this.#sign(target, req.method ?? 'GET');
    res.setHeader('X-Taskcluster-Endpoint', target.href);
    const secure = target.protocol === 'https:';
    const upstream = (secure ? https : http).request(target, {
      method: req.method, headers, agent: secure ? this.#agents.https : this.#agents.http,
    });
    upstream.on('response', (answerStream) => {
      for (const [name, value] of Object.entries(answerStream.headers)) {
        if (!HOP_BY_HOP.has(name) && value !== undefined) res.setHeader(name, value);
      }
      res.writeHead(answerStream.statusCode ?? 502);
      answerStream.pipe(res);
      answerStream.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      this.#options.onProblem?.('taskclusterProxy could not reach the service', { target: target.href, error: err.message });
      if (!res.headersSent) answer(res, 502, `The taskclusterProxy could not reach ${target.origin}: ${err.message}\n`);
      else res.destroy();
    });
    req.on('aborted', () => upstream.destroy());
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    req.pipe(upstream);
  }

  async #bewit(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body = '';
    try {
      for await (const chunk of req) {
        body += chunk;
        if (body.length > MAX_BEWIT_BODY_BYTES) return answer(res, 413, 'The /bewit body is the URL to sign, no more.\n');
      }
      const url = new URL(body.trim());
      const creds = this.#options.credentials();
      const bewit = Hawk.client.getBewit(url.href, {
        credentials: { id: creds.clientId, key: creds.accessToken, algorithm: 'sha256' }, ttlSec: BEWIT_TTL_SECONDS, ext: hawkExt(creds),
      });
      url.searchParams.append('bewit', bewit);
      res.setHeader('Location', url.href);
      answer(res, 303, url.href);
    } catch (err) {
      answer(res, 400, `The /bewit body must be the URL to sign: ${(err as Error).message}\n`);
    }
  }

  #sign(target: URL, method: string): string {
    const creds = this.#options.credentials();
    return Hawk.client.header(target.href, method.toUpperCase(), {
      credentials: { id: creds.clientId, key: creds.accessToken, algorithm: 'sha256' }, ext: hawkExt(creds),
    }).header;
  }

  #commonHeaders(res: http.ServerResponse): void {
    const creds = this.#options.credentials();
    res.setHeader('X-Taskcluster-Proxy-Version', this.#options.version);
    if (!creds.certificate) {
      res.setHeader('X-Taskcluster-Proxy-Perm-ClientId', creds.clientId);
      return;
    }
    res.setHeader('X-Taskcluster-Proxy-Temp-ClientId', creds.clientId);
    const scopes = certificateOf(creds)?.scopes;
    if (Array.isArray(scopes)) res.setHeader('X-Taskcluster-Proxy-Temp-Scopes', JSON.stringify(scopes));
  }
}

function certificateOf(creds: TaskCredentials): { scopes?: unknown } | undefined {
  if (!creds.certificate) return undefined;
  return typeof creds.certificate === 'string' ? JSON.parse(creds.certificate) : creds.certificate;
}

/** Hawk's ext as Taskcluster reads it: the temporary credentials' certificate. */
function hawkExt(creds: TaskCredentials): string | undefined {
  const certificate = certificateOf(creds);
  return certificate ? Buffer.from(JSON.stringify({ certificate })).toString('base64') : undefined;
}

function splitQuery(url: string): [string, string | undefined] {
  const i = url.indexOf('?');
  return i === -1 ? [url, undefined] : [url.slice(0, i), url.slice(i + 1)];
}

function answer(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}
