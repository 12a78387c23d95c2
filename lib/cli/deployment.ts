// Where the CLI finds the deployment to talk to: --root-url / config / TASKCLUSTER_* env,
// or else the embedded deployment's credentials file under the state directory.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkerConfig } from '../config/load.ts';
import type { Deployment } from '../queue/taskcluster.ts';

export function embeddedStateDir(config: WorkerConfig): string {
  return path.join(config.stateDir, 'embedded');
}

export function deploymentFor(config: WorkerConfig): Deployment {
  if (config.rootUrl) {
    const { clientId, accessToken, certificate } = config.credentials;
    return { rootUrl: config.rootUrl.replace(/\/+$/, ''), credentials: { clientId, accessToken, ...(certificate ? { certificate } : {}) } };
  }
  const file = path.join(embeddedStateDir(config), 'credentials.json');
  let data: { rootUrl: string; clientId: string; accessToken: string };
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw Object.assign(new Error(`no rootUrl is configured and there is no embedded deployment at ${file}: start one with \`worker start\` (or \`worker serve --state ${embeddedStateDir(config)}\`), or set TASKCLUSTER_ROOT_URL and credentials`), { name: 'ConfigError' });
  }
  return { rootUrl: data.rootUrl, credentials: { clientId: data.clientId, accessToken: data.accessToken } };
}
