// Task proxies: what taskclusterProxy costs.
//  1. Task start: trivial tasks (`true`) with taskclusterProxy and without, alternating, at
//     capacity 1: createTask -> container started (the engine's own start event) and ->
//     resolved. The difference is the per-task network (create, remove) and the proxy's socket.
//  2. A proxied request: 1,000 authenticated GETs (auth.currentScopes) from this process
//     through a TaskclusterProxy on a gateway server on loopback, against the same request
//     signed the same way and sent straight to the deployment, alternating; median latency.
//     (In a task the request also crosses the bridge; loopback isolates the proxy's own cost.)
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Hawk from '@hapi/hawk';
import type { BenchContext } from './lib/context.ts';
import type { BenchmarkResult } from './lib/report.ts';
import { median, round, summary } from './lib/stats.ts';
import { submitTask, waitResolved } from './lib/tasks.ts';
import { WorkerProcess } from './lib/worker-process.ts';
import { GatewayServer } from '../lib/features/gateway-server.ts';
import { TaskclusterProxy } from '../lib/features/taskcluster-proxy-server.ts';

interface StartSample { proxy: boolean; startMs: number; totalMs: number }

async function timedStart(ctx: BenchContext, worker: WorkerProcess, proxy: boolean): Promise<StartSample> {
  const payload = { image: ctx.options.image, command: ['true'], maxRunTime: 600, ...(proxy ? { features: { taskclusterProxy: true } } : {}) };
  const submitted = await submitTask(worker, payload, proxy ? 'proxy start' : 'plain start');
  const resolved = await waitResolved(worker, submitted.taskId, 120_000);
  const c = await ctx.events.when(submitted.taskId, 'start', 5000);
  return { proxy, startMs: c.start! - submitted.submittedAt, totalMs: resolved.time - submitted.submittedAt };
}

function get(agent: http.Agent, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`${url} answered ${res.statusCode}`))));
    }).on('error', reject);
  });
}

export async function proxies(ctx: BenchContext): Promise<BenchmarkResult> {
  const { options } = ctx;
  const tasks = options.quick ? 4 : 15;
  const requests = options.quick ? 200 : 1000;
  const worker = await WorkerProcess.start({ name: 'proxies', capacity: 1, deployment: options.deployment, cpuProfDir: ctx.profileDir('proxies'), keepStateDir: options.keep });
  const starts: StartSample[] = [];
  const proxied: number[] = [];
  const direct: number[] = [];
  try {
    ctx.progress(`proxies: warming up (worker pid ${worker.pid})`);
    await timedStart(ctx, worker, false);
    await timedStart(ctx, worker, true);
    for (let i = 0; i < tasks; i++) {
      starts.push(await timedStart(ctx, worker, i % 2 === 0));
      starts.push(await timedStart(ctx, worker, i % 2 !== 0));
    }
    ctx.progress(`proxies: ${requests} requests each way`);
    const { rootUrl, clientId, accessToken } = worker.credentials;
    const credentials = { clientId, accessToken };
    const proxy = new TaskclusterProxy({ rootUrl, credentials: () => credentials, version: 'bench' });
    const gateway = new GatewayServer({ allows: () => true });
    gateway.serve('taskcluster', proxy.handle);
    const { port } = await gateway.listen('127.0.0.1', 0) as AddressInfo;
    const proxyAgent = new http.Agent({ keepAlive: true });
    const directAgent = new http.Agent({ keepAlive: true });
    const target = `${rootUrl.replace(/\/$/, '')}/api/auth/v1/scopes/current`;
    const sign = () => Hawk.client.header(target, 'GET', { credentials: { id: clientId, key: accessToken, algorithm: 'sha256' } }).header;
    try {
      for (let i = 0; i < 50; i++) { await get(proxyAgent, `http://127.0.0.1:${port}/api/auth/v1/scopes/current`, { host: 'taskcluster' }); await get(directAgent, target, { authorization: sign() }); }
      for (let i = 0; i < requests; i++) {
        proxied.push(await get(proxyAgent, `http://127.0.0.1:${port}/api/auth/v1/scopes/current`, { host: 'taskcluster' }));
        // The direct request signs as the proxy does: the signing is part of the request's cost.
        const t0 = performance.now();
        const authorization = sign();
        const signMs = performance.now() - t0;
        direct.push(signMs + await get(directAgent, target, { authorization }));
      }
    } finally {
      proxyAgent.destroy();
      directAgent.destroy();
      proxy.close();
      await gateway.close();
    }
  } finally {
    await worker.stop();
  }
  const plain = starts.filter((s) => !s.proxy);
  const withProxy = starts.filter((s) => s.proxy);
  const startAdded = median(withProxy.map((s) => s.startMs)) - median(plain.map((s) => s.startMs));
  const totalAdded = median(withProxy.map((s) => s.totalMs)) - median(plain.map((s) => s.totalMs));
  const requestAdded = median(proxied) - median(direct);
  return {
    name: 'proxies',
    title: 'Task proxies',
    rows: [
      {
        benchmark: 'Task proxies', figure: `${withProxy.length} × \`true\` with taskclusterProxy: createTask → container started (median)`,
        worker: round(median(withProxy.map((s) => s.startMs)), 0), floor: round(median(plain.map((s) => s.startMs)), 0), unit: 'ms',
        comparison: `+${round(startAdded, 0)} ms over a plain task`, target: '≤ +150 ms', met: startAdded <= 150,
      },
      {
        benchmark: 'Task proxies', figure: 'the same tasks: createTask → resolved (median)',
        worker: round(median(withProxy.map((s) => s.totalMs)), 0), floor: round(median(plain.map((s) => s.totalMs)), 0), unit: 'ms',
        comparison: `+${round(totalAdded, 0)} ms over a plain task`,
      },
      {
        benchmark: 'Task proxies', figure: `${requests} × GET auth.currentScopes through the proxy (median latency)`,
        worker: round(median(proxied), 2), floor: round(median(direct), 2), unit: 'ms',
        comparison: `+${round(requestAdded, 2)} ms over the same request sent straight`, target: '≤ +2 ms', met: requestAdded <= 2,
      },
    ],
    details: {
      starts: { withProxy: summary(withProxy.map((s) => s.startMs)), plain: summary(plain.map((s) => s.startMs)) },
      totals: { withProxy: summary(withProxy.map((s) => s.totalMs)), plain: summary(plain.map((s) => s.totalMs)) },
      requests: { proxied: summary(proxied), direct: summary(direct) },
      startSamples: starts,
    },
    notes: [
      'Task start: plain and proxied tasks alternate on one worker (capacity 1); the proxied task adds the per-task network (create before the container, remove after it) and the gateway server.',
      'Requests: from this process over loopback with keep-alive, proxied and direct alternating; both are Hawk-signed with the same credentials (the proxy signs for the caller). In a task the request also crosses the Docker bridge.',
    ],
  };
}
