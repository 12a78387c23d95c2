// What every embedded service is given: the store, the auth backend (for Hawk and for
// expanding scopes), the worker log, the deployment's settings and its rootUrl.
import type { Database } from './store.ts';
import type { AuthBackend } from './api/hawk-auth.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import type { Handler } from './api/service.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EmbeddedSettings {
  stateDir: string;
  /** How long a claim lasts before it must be reclaimed (Taskcluster: 20 minutes). */
  claimTimeoutSeconds: number;
  /** How long claimWork waits on an empty queue (Taskcluster: about 20 s). */
  claimWorkWaitSeconds: number;
  /** How often expiry, deadlines and claim expiry are checked. */
  sweepIntervalSeconds: number;
  /**
   * How long purgeRequests answers from the list it read last for a worker pool (Taskcluster's
   * purge-cache `app.cacheTime`: 10 s), so a new purge request can take that long to be seen.
   */
  purgeRequestsCacheSeconds: number;
  /**
   * Where signed blob URLs (object uploads and downloads) point, when not at the root URL: a
   * deployment whose blob traffic reaches it through another address (a reverse proxy; the
   * fault suite's proxy). The signature covers the grant, not the address.
   */
  blobUrlBase?: string;
}

export interface EmbeddedContext {
  db: Database;
  auth: AuthBackend;
  log: WorkerLog;
  settings: EmbeddedSettings;
  rootUrl(): string;
  /** Credentials of the service clients, for signing temporary credentials. */
  serviceCredentials: { clientId: string; accessToken: string };
  /** A secret for signing data URLs (object service uploads and downloads). */
  urlSecret: string;
}

/** A handler for a path outside the API layout (blob uploads and downloads). */
export type RawHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

export interface ServiceParts {
  handlers: Record<string, Handler>;
  /** Raw handlers by path prefix, e.g. '/_object/blob/'. */
  raw?: Record<string, RawHandler>;
  /** Called periodically: expiry and other time-driven work. */
  sweep?: () => void | Promise<void>;
  /** Called on shutdown: wake long-polls, stop timers. */
  close?: () => void | Promise<void>;
}
