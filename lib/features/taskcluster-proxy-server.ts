// The taskclusterProxy's request handler: what a task reaches as http://taskcluster/ (served
// on the run's gateway server, gateway-server.ts). It speaks the contract of the Taskcluster
// monorepo's tools/taskcluster-proxy:
//   /api/<service>/<version>/<path>   -> <rootUrl>/api/<service>/<version>/<path>
//   /<service>/<version>/<path>       -> the same (the legacy layout, before rootUrls)
//   /bewit (body: a URL)              -> 303 to that URL signed with a bewit (valid one hour)
//   /credentials                      -> refused: the worker hands over new credentials itself
// Each forwarded request is signed (Hawk) with the run's current temporary credentials; the
// body is streamed both ways (never buffered), redirects and error answers are passed to the
// task as the service gave them (http-forward.ts). Only the services of a Taskcluster
// deployment are forwarded: anything else (an unknown service, a host name) is answered 404 by
// the proxy itself, so the task's credentials are never sent to another host.
import type http from 'node:http';
import Hawk from '@hapi/hawk';
import type { TaskCredentials } from '../task/types.ts';
import { ForwardAgents, answerText, forward } from './http-forward.ts';

/** The services of a Taskcluster deployment (taskcluster-lib-urls' names). */
export const TASKCLUSTER_SERVICES: readonly string[] = [
  'auth', 'github', 'hooks', 'index', 'notify', 'object', 'purge-cache', 'queue', 'secrets', 'worker-manager',
];

export const BEWIT_TTL_SECONDS = 3600;
const MAX_BEWIT_BODY_BYTES = 64 * 1024;

export interface TaskclusterProxyOptions {
  rootUrl: string;
  /** The credentials to sign with, asked for every request. */
  credentials(): TaskCredentials;
  /** Sent as X-Taskcluster-Proxy-Version. */
  version: string;
}

export class TaskclusterProxy {
  readonly #options: TaskclusterProxyOptions;
  readonly #agents = new ForwardAgents();
  readonly #root: URL;

  constructor(options: TaskclusterProxyOptions) {
    this.#options = options;
    this.#root = new URL(options.rootUrl);
  }

  /** Drops the kept-alive connections to the services (the run is over). */
  close(): void { this.#agents.destroy(); }

  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? '/';
    const [path = '/', query] = splitQuery(url);
    this.#commonHeaders(res);
    if (path === '/bewit' || path.startsWith('/bewit/')) return void this.#bewit(req, res);
    if (path === '/credentials' || path.startsWith('/credentials/')) {
      return answerText(res, req.method === 'PUT' ? 403 : 405, 'The worker updates the proxy\'s credentials itself after every reclaim; a task cannot set them.\n');
    }
    const target = this.#target(path, query);
    if (typeof target === 'string') return answerText(res, 404, target);
    res.setHeader('X-Taskcluster-Endpoint', target.href);
    forward(req, res, {
      target, agents: this.#agents,
      authorization: (t, method) => this.#sign(t, method),
      // As tools/taskcluster-proxy: a body without a Content-Type is JSON.
      defaultHeaders: (h) => (h['content-type'] === undefined && (Number(h['content-length'] ?? 0) > 0 || h['transfer-encoding'] !== undefined)
        ? { 'content-type': 'application/json' } : {}),
      unreachable: (t, err) => `The taskclusterProxy could not reach ${t.origin}: ${err.message}\n`,
    });
  };

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

  async #bewit(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body = '';
    try {
      for await (const chunk of req) {
        body += chunk;
        if (body.length > MAX_BEWIT_BODY_BYTES) return answerText(res, 413, 'The /bewit body is the URL to sign, no more.\n');
      }
      const url = new URL(body.trim());
      const creds = this.#options.credentials();
      const bewit = Hawk.client.getBewit(url.href, {
        credentials: { id: creds.clientId, key: creds.accessToken, algorithm: 'sha256' }, ttlSec: BEWIT_TTL_SECONDS, ext: hawkExt(creds),
      });
      url.searchParams.append('bewit', bewit);
      res.setHeader('Location', url.href);
      answerText(res, 303, url.href);
    } catch (err) {
      answerText(res, 400, `The /bewit body must be the URL to sign: ${(err as Error).message}\n`);
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
