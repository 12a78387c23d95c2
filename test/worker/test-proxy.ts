// An HTTP proxy between the worker and the embedded deployment, for the moments a real
// deployment cannot be made to produce on cue: a request held until the test lets it go (an
// upload in flight while the worker is told to stop), a request answered with a status (a
// queue outage), a request whose Hawk signature is spoiled on the way (the embedded queue then
// refuses it with its own 401), a connection closed without an answer (or half way through the
// request's body), a slow answer. Everything
// else passes through untouched. Docker is never
// involved: the worker and the engine talk directly.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import winston from 'winston';
import { startWorker } from '../../lib/worker.ts';
import type { WorkerHarness } from '../support/worker.ts';

export interface HeldRequest {
  /** Resolves when a matching request has arrived and is being held. */
  readonly arrived: Promise<void>;
  /** Lets the held request (and any later matching one) through. */
  release(): void;
}

type Rule =
  | { kind: 'hold'; method: string; path: RegExp; gate: Promise<void>; onArrive: () => void }
  | { kind: 'answer'; method: string; path: RegExp; status: number; count: number }
  | { kind: 'spoil-auth'; method: string; path: RegExp; count: number }
  | { kind: 'reset'; method: string; path: RegExp; count: number }
  | { kind: 'delay'; method: string; path: RegExp; ms: number; count: number }
  | { kind: 'cut'; method: string; path: RegExp; afterBytes: number; count: number };

export class TestProxy {
  url = '';
  /** Requests seen, as "METHOD /path". */
  readonly seen: string[] = [];
  private readonly rules: Rule[] = [];
  private server: http.Server | undefined;

  static async start(target: string): Promise<TestProxy> {
    const proxy = new TestProxy();
    await proxy.listen(new URL(target));
    return proxy;
  }

  /** Holds matching requests until release(). */
  hold(method: string, path: RegExp): HeldRequest {
    let release!: () => void;
    let onArrive!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const arrived = new Promise<void>((r) => { onArrive = r; });
    this.rules.push({ kind: 'hold', method, path, gate, onArrive });
    return { arrived, release };
  }

  /** Answers matching requests itself with `status` (at most `count` times). */
  answer(method: string, path: RegExp, status: number, count = Infinity): void {
    this.rules.push({ kind: 'answer', method, path, status, count });
  }

  /** Forwards matching requests with a wrong Hawk MAC, so the deployment refuses them (401). */
  spoilAuth(method: string, path: RegExp, count = Infinity): void {
    this.rules.push({ kind: 'spoil-auth', method, path, count });
  }

  /** Closes the connection of matching requests without an answer (at most `count` times). */
  reset(method: string, path: RegExp, count = Infinity): void {
    this.rules.push({ kind: 'reset', method, path, count });
  }

  /**
   * Forwards matching requests but closes both connections once `afterBytes` of the request
   * body went through (an upload reset half way; at most `count` times).
   */
  cut(method: string, path: RegExp, afterBytes: number, count = Infinity): void {
    this.rules.push({ kind: 'cut', method, path, afterBytes, count });
  }

  /** Forwards matching requests only after `ms` (at most `count` times). */
  delay(method: string, path: RegExp, ms: number, count = Infinity): void {
    this.rules.push({ kind: 'delay', method, path, ms, count });
  }

  /** How many requests matched. */
  count(method: string, path: RegExp): number {
    return this.seen.filter((s) => s.startsWith(`${method} `) && path.test(s.slice(method.length + 1))).length;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  }

  /** Points the proxy at another deployment (when the proxy's URL had to be known first). */
  retarget(target: string): void { this.target = new URL(target); }

  private target: URL | undefined;

  private async listen(target: URL): Promise<void> {
    this.target = target;
    this.server = http.createServer((req, res) => { void this.handle(this.target!, req, res); });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  private async handle(target: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    this.seen.push(`${req.method} ${path}`);
    const headers = { ...req.headers };
    let cutAfter: number | undefined;
    for (const rule of this.rules) {
      if (rule.method !== req.method || !rule.path.test(path)) continue;
      if (rule.kind === 'hold') {
        rule.onArrive();
        await rule.gate;
      } else if (rule.kind === 'answer' && rule.count > 0) {
        rule.count--;
        req.resume();
        res.writeHead(rule.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'InjectedByTestProxy', message: `injected ${rule.status}` }));
        return;
      } else if (rule.kind === 'reset' && rule.count > 0) {
        rule.count--;
        req.socket.destroy();
        return;
      } else if (rule.kind === 'delay' && rule.count > 0) {
        rule.count--;
        await new Promise((r) => setTimeout(r, rule.ms));
      } else if (rule.kind === 'cut' && rule.count > 0) {
        rule.count--;
        cutAfter = rule.afterBytes;
      } else if (rule.kind === 'spoil-auth' && rule.count > 0 && typeof headers.authorization === 'string') {
        rule.count--;
        headers.authorization = headers.authorization.replace(/mac="[^"]*"/, 'mac="c3BvaWxlZCBieSB0aGUgdGVzdCBwcm94eQ=="');
      }
    }
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    if (cutAfter !== undefined) {
      let seen = 0;
      const limit = cutAfter;
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen < limit) return;
        req.socket.destroy();
        upstream.destroy();
      });
    }
    req.pipe(upstream);
  }
}

/** Starts the harness's worker with its Taskcluster calls going through `proxy`. */
export async function startWorkerBehind(h: WorkerHarness, proxy: TestProxy): Promise<void> {
  const log = winston.createLogger({ level: 'debug', transports: [h.capture] });
  h.worker = await startWorker(h.config, { rootUrl: proxy.url, credentials: h.credentials }, log);
}
