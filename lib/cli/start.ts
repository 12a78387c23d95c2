// `worker start`: run the worker. With no rootUrl, the embedded deployment starts in this
// process first and the worker talks to it over HTTP like any client.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { createWorkerLog } from '../log/worker-log.ts';
import { startWorker } from '../worker.ts';
import { untilSignal } from './signals.ts';
import { deploymentFor, embeddedStateDir } from './deployment.ts';
import type { Deployment } from '../queue/taskcluster.ts';

export const usage = 'worker start --provisioner-id P --worker-type T [--worker-group G] [--worker-id I] [--capacity N] [--config FILE]';

export async function start(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'provisioner-id': { type: 'string' }, 'worker-type': { type: 'string' }, 'worker-group': { type: 'string' },
      'worker-id': { type: 'string' }, capacity: { type: 'string' }, config: { type: 'string' },
    },
  });
  const config = loadConfig({
    file: values.config,
    overrides: {
      provisionerId: values['provisioner-id'], workerType: values['worker-type'], workerGroup: values['worker-group'],
      workerId: values['worker-id'], capacity: values.capacity === undefined ? undefined : Number(values.capacity),
    },
  });
  const log = createWorkerLog({ level: config.logLevel });
  let closeEmbedded: (() => Promise<void>) | undefined;
  let deployment: Deployment;
  if (config.rootUrl) {
    deployment = deploymentFor(config);
  } else {
    const { startEmbedded } = await import('../embedded/server.ts');
    const embedded = await startEmbedded({
      stateDir: embeddedStateDir(config), host: config.embedded.host, port: config.embedded.port,
      claimTimeoutSeconds: config.embedded.claimTimeoutSeconds, log,
    });
    closeEmbedded = () => embedded.close();
    deployment = { rootUrl: embedded.rootUrl, credentials: { clientId: embedded.credentials.clientId, accessToken: embedded.credentials.accessToken } };
    process.stdout.write(`embedded deployment: ${embedded.rootUrl}\ncredentials: ${embedded.credentialsFile}\n`);
  }
  let worker;
  try {
    worker = await startWorker(config, deployment, log);
  } catch (err) {
    await closeEmbedded?.();
    throw err;
  }
  const signal = untilSignal().then((sig) => worker.shutdown(sig));
  await Promise.race([worker.stopped, signal]);
  await worker.stopped;
  await closeEmbedded?.();
  return 0;
}
