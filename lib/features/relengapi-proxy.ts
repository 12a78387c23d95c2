// relengAPIProxy (payload.features.relengAPIProxy): inside the task, http://relengapi/ reaches
// the RelengAPI the worker is configured with (relengAPI.url), each request carrying a
// temporary token limited to the permissions the task holds as scopes
// docker-worker:relengapi-proxy:<permission>, as taskcluster/relengapi-proxy did: the token is
// minted from the worker's own token (POST <url>/tokenauth/tokens, typ "tmp", 10 minutes) before
// the task starts and minted again shortly before it expires. The worker's token never reaches
// the task. Served on the run's gateway server (gateway-server.ts) as `relengapi`. A worker
// without relengAPI settings refuses the feature.
import type http from 'node:http';
import { acquireProxyGateway, type GatewayLease } from './gateway-server.ts';
import { ForwardAgents, forward } from './http-forward.ts';
import { onTaskNetwork, type TaskNetworkLease } from './task-network.ts';
import type { Feature } from './feature.ts';

export const RELENGAPI_HOST = 'relengapi';
export const RELENGAPI_SCOPE_PREFIX = 'docker-worker:relengapi-proxy:';
export const TMP_TOKEN_LIFETIME_MS = 10 * 60_000;
/** A token is minted again this long before it expires. */
const TMP_TOKEN_SKEW_MS = 10_000;

export interface RelengAPIProxyOptions {
  /** The permissions of the task's temporary token (from its docker-worker:relengapi-proxy:<permission> scopes). */
  permissions: string[];
}

export function relengAPIPermissions(scopes: readonly string[]): string[] {
  const perms = scopes.filter((s) => s.startsWith(RELENGAPI_SCOPE_PREFIX)).map((s) => s.slice(RELENGAPI_SCOPE_PREFIX.length)).filter(Boolean);
  return [...new Set(perms)].sort();
}

export const relengAPIProxy: Feature<RelengAPIProxyOptions> = {
  name: 'relengAPIProxy',
  defaultEnabled: false,
  plan: ({ taskId, runId, scopes, worker, workerPool }) => {
    const options = { permissions: relengAPIPermissions(scopes) };
    if (!worker.relengAPI) {
      return { options, refusals: [`payload.features.relengAPIProxy is not available on worker pool ${workerPool}: it has no RelengAPI configured (worker configuration relengAPI.url and relengAPI.token); run the task on a pool that provides it, or remove it`] };
    }
    return { options, container: onTaskNetwork(taskId, runId) };
  },
  forTask: (ctx) => {
    let network: TaskNetworkLease | undefined;
    let gateway: GatewayLease | undefined;
    const agents = new ForwardAgents();
    let token: { value: string; renewAt: number } | undefined;
    let minting: Promise<string> | undefined;
    const settings = ctx.worker.relengAPI;
    const base = settings?.url.replace(/\/+$/, '') ?? '';

    const mint = async (): Promise<string> => {
      const expires = new Date(Date.now() + TMP_TOKEN_LIFETIME_MS);
      const res = await fetch(`${base}/tokenauth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${settings!.token}` },
        body: JSON.stringify({ typ: 'tmp', expires: expires.toISOString(), permissions: ctx.options.permissions, metadata: {} }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`RelengAPI answered ${res.status} to the token request: ${text.slice(0, 300)}`);
      const value = (JSON.parse(text) as { result?: { token?: unknown } }).result?.token;
      if (typeof value !== 'string') throw new Error('RelengAPI answered the token request without result.token');
      token = { value, renewAt: expires.getTime() - TMP_TOKEN_SKEW_MS };
      return value;
    };
    const currentToken = (): Promise<string> => {
      if (token && Date.now() < token.renewAt) return Promise.resolve(token.value);
      return (minting ??= mint().finally(() => { minting = undefined; }));
    };

    const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      currentToken().then((value) => {
        forward(req, res, {
          target: new URL(`${base}${req.url ?? '/'}`), agents,
          authorization: () => `Bearer ${value}`,
          unreachable: (t, err) => `The relengAPIProxy could not reach ${t.origin}: ${err.message}\n`,
        });
      }, (err: Error) => {
        ctx.log.warn('relengAPIProxy could not renew its token', { taskId: ctx.taskId, runId: ctx.runId, error: err.message });
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end(`The relengAPIProxy could not get a RelengAPI token: ${err.message}\n`);
      });
    };

    return {
      async beforeCreate() {
        if (!settings) return { refusal: 'payload.features.relengAPIProxy is not available: this worker has no RelengAPI configured (worker configuration relengAPI.url and relengAPI.token)' };
        try {
          await currentToken();
        } catch (err) {
          throw new Error(`The relengAPIProxy feature could not get a temporary RelengAPI token for the permissions ${JSON.stringify(ctx.options.permissions)}: ${(err as Error).message}. Check relengAPI.url and that relengAPI.token may issue temporary tokens (base.tokens.tmp.issue) with those permissions.`, { cause: err });
        }
        ({ network, gateway } = await acquireProxyGateway('relengAPIProxy', ctx));
        gateway.server.serve(RELENGAPI_HOST, handle);
        return { container: { extraHosts: [`${RELENGAPI_HOST}:${network.network.gateway}`] } };
      },
      async cleanup() {
        agents.destroy();
        await gateway?.release();
        await network?.release();
      },
    };
  },
};
