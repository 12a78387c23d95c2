// An HTTP proxy between the worker and the embedded deployment, for the moments a real
// deployment cannot be made to produce on cue: a request held until the test lets it go (an
// upload in flight while the worker is told to stop), a request answered with a status (a
// queue outage), a request whose Hawk signature is spoiled on the way (the embedded queue then
// refuses it with its own 401), a connection closed without an answer (or half way through the
// request's body), a slow answer. Everything
// else passes through untouched. Docker is never
// involved: the worker and the engine talk directly. Faults can also be drawn at random (from
// a seeded source, so a run can be repeated) for a share of the matching requests: the soak
// with faults (bench/soak-faults.ts) uses that. Every fault is injected before the request is
// forwarded: the deployment never sees a request whose answer the worker lost.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HeldRequest {
  /** Resolves when a matching request has arrived and is being held. */
  readonly arrived: Promise<void>;
  /** Lets the held request (and any later matching one) through. */
  release(): void;
}

/** A fault for one request: its connection closed without an answer, an answer with `status`, or forwarded `ms` late. */
export type Fault = { kind: 'reset' } | { kind: 'answer'; status: number } | { kind: 'delay'; ms: number };

export const describeFault = (f: Fault): string => f.kind === 'reset' ? 'connection closed' : f.kind === 'answer' ? `HTTP ${f.status}` : 'slow answer';

/** A seeded pseudo-random source in [0, 1) (mulberry32): the same seed draws the same faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rule =
  | { kind: 'hold'; method: string; path: RegExp; gate: Promise<void>; onArrive: () => void }
  | { kind: 'answer'; method: string; path: RegExp; status: number; count: number }
  | { kind: 'spoil-auth'; method: string; path: RegExp; count: number }
  | { kind: 'reset'; method: string; path: RegExp; count: number }
  | { kind: 'delay'; method: string; path: RegExp; ms: number; count: number }
  | { kind: 'cut'; method: string; path: RegExp; afterBytes: number; count: number }
  | { kind: 'random'; method: string; path: RegExp; label: string; rate: number; random: () => number; draw: (random: () => number) => Fault };

export class TestProxy {
  url = '';
  /** Requests seen, as "METHOD /path". */
  readonly seen: string[] = [];
  /** Faults drawn by randomly(), by label, then by describeFault(). */
  readonly injected: Record<string, Record<string, number>> = {};
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

  /**
   * Injects a fault into a share `rate` (0..1) of matching requests, chosen with `random` (pass
   * a seededRandom); `draw` picks the fault. Counted in `injected[label]`.
   */
  randomly(label: string, method: string, path: RegExp, rate: number, random: () => number, draw: (random: () => number) => Fault): void {
    this.rules.push({ kind: 'random', method, path, label, rate, random, draw });
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
      let fault: Fault | undefined;
      if (rule.kind === 'hold') {
        rule.onArrive();
        await rule.gate;
      } else if (rule.kind === 'answer' && rule.count > 0) {
        rule.count--;
        fault = { kind: 'answer', status: rule.status };
      } else if (rule.kind === 'reset' && rule.count > 0) {
        rule.count--;
        fault = { kind: 'reset' };
      } else if (rule.kind === 'delay' && rule.count > 0) {
        rule.count--;
        fault = { kind: 'delay', ms: rule.ms };
      } else if (rule.kind === 'cut' && rule.count > 0) {
        rule.count--;
        cutAfter = rule.afterBytes;
      } else if (rule.kind === 'random' && rule.random() < rule.rate) {
        fault = rule.draw(rule.random);
        const counts = this.injected[rule.label] ??= {};
        counts[describeFault(fault)] = (counts[describeFault(fault)] ?? 0) + 1;
      } else if (rule.kind === 'spoil-auth' && rule.count > 0 && typeof headers.authorization === 'string') {
        rule.count--;
        headers.authorization = headers.authorization.replace(/mac="[^"]*"/, 'mac="c3BvaWxlZCBieSB0aGUgdGVzdCBwcm94eQ=="');
      }
      if (fault?.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (fault?.kind === 'answer') {
        req.resume();
        res.writeHead(fault.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'InjectedByTestProxy', message: `injected ${fault.status}` }));
        return;
      }
      if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
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
