// The Taskcluster deployment a test talks to: the embedded one (started per harness, the
// default) or an existing one named by the environment, as an operator names it:
//
//   TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN   (credentials with
//                        scope `*`, or at least what the tests create, claim and read)
//   TEST_CLAIM_TIMEOUT_SECONDS   that deployment's queue claim timeout (default 1200, the
//                        queue's own default); `make test-realtc` starts the real services
//                        with 30 s claims so the reclaim tests take seconds.
//
// Tests reach everything through `rootUrl` and `credentials` over HTTP with taskcluster-client,
// so the same test runs unchanged against both. What only the embedded deployment can do
// (choose the claim timeout per test, restart from its state directory) is asked for through
// `claimTimeoutSeconds` and `embedded`, and a test that needs it says so when it is missing.
import path from 'node:path';
import type { Logger } from 'winston';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import type { Credentials } from '../../lib/queue/taskcluster.ts';

export type DeploymentKind = 'embedded' | 'real';

export interface TestDeployment {
  kind: DeploymentKind;
  rootUrl: string;
  /** Root (or sufficiently broad) credentials. */
  credentials: Credentials;
  /** The queue's claim timeout, in seconds. */
  claimTimeoutSeconds: number;
  /** The embedded deployment itself, when that is what runs. */
  embedded: EmbeddedDeployment | undefined;
  close(): Promise<void>;
}

/** The deployment named by the environment, or undefined (the embedded one is used). */
export function externalDeployment(env: NodeJS.ProcessEnv = process.env): Omit<TestDeployment, 'close'> | undefined {
  const rootUrl = env.TASKCLUSTER_ROOT_URL;
  if (!rootUrl) return undefined;
  const clientId = env.TASKCLUSTER_CLIENT_ID;
  const accessToken = env.TASKCLUSTER_ACCESS_TOKEN;
  if (!clientId || !accessToken) {
    throw new Error('TASKCLUSTER_ROOT_URL is set but TASKCLUSTER_CLIENT_ID or TASKCLUSTER_ACCESS_TOKEN is not: the tests need credentials for that deployment (scope `*`)');
  }
  const claimTimeoutSeconds = Number(env.TEST_CLAIM_TIMEOUT_SECONDS ?? 1200);
  if (!Number.isInteger(claimTimeoutSeconds) || claimTimeoutSeconds < 1) {
    throw new Error(`TEST_CLAIM_TIMEOUT_SECONDS must be a whole number of seconds, not ${env.TEST_CLAIM_TIMEOUT_SECONDS}`);
  }
  return { kind: 'real', rootUrl: rootUrl.replace(/\/+$/, ''), credentials: { clientId, accessToken }, claimTimeoutSeconds, embedded: undefined };
}

/** True when the tests of this process run against a deployment named by the environment. */
export const onExternalDeployment = Boolean(process.env.TASKCLUSTER_ROOT_URL);

export interface DeploymentOptions {
  /** Where the embedded deployment keeps its state. */
  stateDir: string;
  log: Logger;
  /** The claim timeout the test wants (embedded only; an external deployment has its own). */
  claimTimeoutSeconds?: number;
  /** Where the embedded deployment's signed blob URLs point (e.g. a fault-injecting proxy). */
  blobUrlBase?: string;
}

export async function startDeployment(options: DeploymentOptions): Promise<TestDeployment> {
  const external = externalDeployment();
  if (external) return { ...external, close: async () => {} };
  const claimTimeoutSeconds = options.claimTimeoutSeconds ?? 1200;
  const embedded = await startEmbedded({
    stateDir: path.join(options.stateDir, 'embedded'), port: 0, log: options.log, claimTimeoutSeconds,
    claimWorkWaitSeconds: 20, sweepIntervalSeconds: 1, blobUrlBase: options.blobUrlBase,
  });
  return { kind: 'embedded', rootUrl: embedded.rootUrl, credentials: embedded.credentials, claimTimeoutSeconds, embedded, close: () => embedded.close() };
}
