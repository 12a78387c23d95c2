// The embedded Taskcluster deployment: auth, queue, object, index and purge-cache on one
// loopback HTTP server with the standard layout <rootUrl>/api/<service>/v1/<route>.
// The worker never imports this module: it reaches these services over HTTP through
// taskcluster-client, as it would a real deployment.
import http from 'node:http';
import crypto from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { commitGroup, durable, openStore, type Database } from './store.ts';
import { EmbeddedService, send, Reply } from './api/service.ts';
import type { EmbeddedContext, EmbeddedSettings, ServiceParts, RawHandler } from './context.ts';
import { AuthState, authService } from './auth/service.ts';
import { queueService } from './queue/service.ts';
import { objectService } from './object/service.ts';
import { indexService } from './index/service.ts';
import { purgeCacheService } from './purge-cache/service.ts';
import { queuePulseFor, type PublishedMessage } from './queue/pulse.ts';
import type { WorkerLog } from '../log/worker-log.ts';

export interface EmbeddedOptions extends Partial<EmbeddedSettings> {
  stateDir: string;
  port?: number;
  host?: string;
  log: WorkerLog;
}

export interface RootCredentials { rootUrl: string; clientId: string; accessToken: string }

export interface EmbeddedDeployment {
  rootUrl: string;
  credentials: RootCredentials;
  credentialsFile: string;
  /** The HTTP server (to observe requests, e.g. the tests' schema checks; not to be closed directly). */
  server: http.Server;
  /** The Pulse messages the queue built and validated, the last 1000 (there is no broker). */
  published(): readonly PublishedMessage[];
  /** The messages that failed their exchange schema (each also answered 500 or was logged). */
  rejectedMessages(): readonly { exchange: string; errors: string[] }[];
  /** Stops serving, lets long-polls answer and a running sweep finish, then closes the store. */
  close(): Promise<void>;
}

export const ROOT_CLIENT_ID = 'static/taskcluster/root';
const SERVICE_CLIENT_ID = 'static/taskcluster/queue';

interface Secrets { rootAccessToken: string; serviceAccessToken: string; urlSecret: string }

function loadSecrets(stateDir: string): Secrets {
  const file = path.join(stateDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Secrets;
  const token = () => crypto.randomBytes(33).toString('base64url');
  const secrets = { rootAccessToken: token(), serviceAccessToken: token(), urlSecret: token() };
  writeFileSync(`${file}.tmp`, JSON.stringify(secrets), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return secrets;
}

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedDeployment> {
  const settings: EmbeddedSettings = {
    stateDir: options.stateDir,
    claimTimeoutSeconds: options.claimTimeoutSeconds ?? 1200,
    claimWorkWaitSeconds: options.claimWorkWaitSeconds ?? 20,
    sweepIntervalSeconds: options.sweepIntervalSeconds ?? 1,
    purgeRequestsCacheSeconds: options.purgeRequestsCacheSeconds ?? 10,
    ...(options.blobUrlBase ? { blobUrlBase: options.blobUrlBase } : {}),
  };
  for (const key of ['claimTimeoutSeconds', 'claimWorkWaitSeconds', 'sweepIntervalSeconds', 'purgeRequestsCacheSeconds'] as const) {
    const value = settings[key];
    const least = key === 'claimTimeoutSeconds' ? 1 : key === 'purgeRequestsCacheSeconds' ? 0 : 0.01;
    if (!(Number.isFinite(value) && value >= least)) throw new RangeError(`embedded deployment: ${key} must be at least ${least} s, not ${value}`);
  }
  const db: Database = openStore(options.stateDir);
  const secrets = loadSecrets(options.stateDir);
  const auth = new AuthState(db);
  auth.ensureStaticClient(ROOT_CLIENT_ID, secrets.rootAccessToken, ['*'], 'root client of the embedded deployment');
  auth.ensureStaticClient(SERVICE_CLIENT_ID, secrets.serviceAccessToken, ['*'], 'signs claim credentials');
  auth.ensureDefaultRoles();

  let rootUrl = '';
  const ctx: EmbeddedContext = {
    db, auth, log: options.log, settings, rootUrl: () => rootUrl,
    serviceCredentials: { clientId: SERVICE_CLIENT_ID, accessToken: secrets.serviceAccessToken },
    urlSecret: secrets.urlSecret,
  };
  const parts: Record<string, ServiceParts> = {
    auth: authService(ctx, auth),
    queue: queueService(ctx),
    object: objectService(ctx),
    index: indexService(ctx),
    'purge-cache': purgeCacheService(ctx),
  };
  const services = new Map<string, EmbeddedService>();
  const raw: [string, RawHandler][] = [];
  for (const [name, p] of Object.entries(parts)) {
    services.set(name, new EmbeddedService({ name, handlers: p.handlers, auth, log: options.log, rootUrl: () => rootUrl, durable: () => durable(db) }));
    for (const [prefix, h] of Object.entries(p.raw ?? {})) raw.push([prefix, h]);
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', rootUrl || 'http://localhost');
    const m = /^\/api\/([a-z-]+)\/v1(\/.*)?$/.exec(url.pathname);
    if (m && services.has(m[1])) {
      void services.get(m[1])!.handle(req, res, m[2] ?? '/', url);
      return;
    }
    for (const [prefix, h] of raw) {
      if (url.pathname.startsWith(prefix)) {
        h(req, res, url).catch((err) => {
          options.log.error('embedded raw handler error', { url: req.url, error: (err as Error).stack });
          if (!res.headersSent) send(res, new Reply(500, { code: 'InternalServerError', message: 'Internal server error' }));
          else res.destroy();
        });
        return;
      }
    }
    send(res, new Reply(404, { code: 'ResourceNotFound', message: `No such path ${url.pathname}`, requestInfo: { method: req.method, path: req.url } }));
  });
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  rootUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  // The running sweep, if any: close() waits for it, so the database is never closed under
  // a sweep that is still deleting blobs and rows.
  let sweeping: Promise<void> | undefined;
  let closing = false;
  let closed: Promise<void> | undefined;
  const sweep = async () => {
    try {
      for (const p of Object.values(parts)) {
        if (closing) break;
        await p.sweep?.();
      }
    } catch (err) {
      options.log.error('embedded sweep failed', { error: (err as Error).stack });
    }
  };
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = sweep().finally(() => { sweeping = undefined; });
  }, settings.sweepIntervalSeconds * 1000);
  timer.unref();

  const credentials: RootCredentials = { rootUrl, clientId: ROOT_CLIENT_ID, accessToken: secrets.rootAccessToken };
  const credentialsFile = path.join(options.stateDir, 'credentials.json');
  writeFileSync(`${credentialsFile}.tmp`, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${credentialsFile}.tmp`, credentialsFile);
  options.log.info('embedded deployment listening', { rootUrl, stateDir: options.stateDir });

  return {
    rootUrl, credentials, credentialsFile, server,
    published: () => queuePulseFor(db, ctx.rootUrl, options.log).published(),
    rejectedMessages: () => queuePulseFor(db, ctx.rootUrl, options.log).rejected(),
    close() {
      closed ??= (async () => {
        closing = true;
        clearInterval(timer);
        for (const p of Object.values(parts)) await p.close?.();
        await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
        await sweeping;
        commitGroup(db);
        db.close();
      })();
      return closed;
    },
  };
}
