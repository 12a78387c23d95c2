// The host-side HTTP server of a run: port 80 of its network's gateway, where the task finds
// its proxies by name (taskcluster, relengapi: /etc/hosts entries pointing at the gateway).
// One per run, shared by the features that serve there: each serves a host name, and a
// request goes to the handler of its Host header (or to the only handler there is). It
// accepts connections from the run's own network only (task-network.ts `allows`), closing
// any other before a byte is read: another task's container can reach every host address.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FeatureRunContext } from './feature.ts';
import { acquireTaskNetwork, type TaskNetwork, type TaskNetworkLease } from './task-network.ts';
import { PerRunShared } from './per-run-shared.ts';

export const GATEWAY_PORT = 80;

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export class ProxyListenError extends Error {}

export interface GatewayServerOptions {
  /** Whether a connection from this address may be served. */
  allows(address: string | undefined): boolean;
  onProblem?(message: string, details: Record<string, unknown>): void;
}

export class GatewayServer {
  readonly #server: http.Server;
  readonly #hosts = new Map<string, RequestHandler>();

  constructor(options: GatewayServerOptions) {
    this.#server = http.createServer((req, res) => this.#route(req, res));
    this.#server.on('connection', (socket: Socket) => {
      if (options.allows(socket.remoteAddress)) return;
      options.onProblem?.('a task proxy refused a connection from outside its task', { from: socket.remoteAddress });
      socket.destroy();
    });
  }

  /** Serves `hostname` (e.g. "taskcluster") with `handler`; returns the undo. */
  serve(hostname: string, handler: RequestHandler): () => void {
    this.#hosts.set(hostname.toLowerCase(), handler);
    return () => { this.#hosts.delete(hostname.toLowerCase()); };
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

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  #route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const handler = this.#hosts.get(host) ?? (this.#hosts.size === 1 ? [...this.#hosts.values()][0] : undefined);
    if (handler) return handler(req, res);
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`No proxy named "${host}" on this task's network; the proxies here are: ${[...this.#hosts.keys()].join(', ') || 'none'}.\n`);
  }
}

/** One gateway server per run, shared by its proxies. */
const servers = new PerRunShared<GatewayServer>();

export interface GatewayLease {
  server: GatewayServer;
  /** Gives the server back (once); the last holder closes it. Never throws. */
  release(): Promise<void>;
}

/** The run's gateway server, listening on port 80 of `network`'s gateway; each lease must be released. */
export async function acquireGatewayServer(ctx: Pick<FeatureRunContext, 'plan' | 'taskId' | 'runId' | 'log'>, network: TaskNetwork): Promise<GatewayLease> {
  const closeServer = (server: GatewayServer) => server.close().catch((err: Error) =>
    ctx.log.warn('could not close a task proxy server', { taskId: ctx.taskId, runId: ctx.runId, error: err.message }));
  const lease = await servers.acquire(ctx.plan, async () => {
    const server = new GatewayServer({
      allows: network.allows,
      onProblem: (message, details) => ctx.log.warn(message, { taskId: ctx.taskId, runId: ctx.runId, ...details }),
    });
    try {
      await server.listen(network.gateway, GATEWAY_PORT);
    } catch (err) {
      await closeServer(server);
      throw err;
    }
    return server;
  }, closeServer);
  return { server: lease.value, release: lease.release };
}

/**
 * What a proxy feature needs before its container exists: the run's network and the gateway
 * server on it, each failure said in one sentence naming the feature and what to check. On a
 * failure nothing stays held; on success the caller releases both in its cleanup.
 */
export async function acquireProxyGateway(feature: string, ctx: Pick<FeatureRunContext, 'taskId' | 'runId' | 'plan' | 'engine' | 'worker' | 'log'>): Promise<{ network: TaskNetworkLease; gateway: GatewayLease }> {
  let network: TaskNetworkLease;
  try {
    network = await acquireTaskNetwork(ctx);
  } catch (err) {
    throw new Error(`The ${feature} feature could not create the task's network: ${(err as Error).message}. Check that the Docker engine can create bridge networks (free address pools).`, { cause: err });
  }
  try {
    return { network, gateway: await acquireGatewayServer(ctx, network.network) };
  } catch (err) {
    await network.release();
    throw new Error(`The ${feature} feature could not listen on ${network.network.gateway}:${GATEWAY_PORT}: ${(err as Error).message}. Check what else listens on port ${GATEWAY_PORT} of this host.`, { cause: err });
  }
}
