// `worker start`: run the worker. With no rootUrl, the embedded deployment starts in this
// process first and the worker talks to it over HTTP like any client. `--host` says where the
// worker runs (lib/host/): what it learns there is layered over the defaults, under the config
// file, the environment and the flags.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type WorkerConfig } from '../config/load.ts';
import { createWorkerLog, type WorkerLog } from '../log/worker-log.ts';
import { startWorker } from '../worker.ts';
import { untilSignal } from './signals.ts';
import { deploymentFor, embeddedStateDir } from './deployment.ts';
import type { Deployment } from '../queue/taskcluster.ts';
import { HOST_KINDS, localHost, type HostConfiguration, type HostKind, type WorkerHost } from '../host/host.ts';

export const usage = 'worker start [--host local|worker-runner|aws] --provisioner-id P --worker-type T [--worker-group G] [--worker-id I] [--capacity N] [--config FILE]';

class StartupInterrupted extends Error {
  constructor(signal: NodeJS.Signals) {
    super(`${signal} received while starting: stopped before claiming any task`);
  }
}

/** How long the process may linger after the worker stopped before it exits anyway. */
const EXIT_GRACE_MS = 2000;

export async function createHost(kind: HostKind, config: () => WorkerConfig): Promise<WorkerHost> {
  if (kind === 'worker-runner') return new (await import('../host/worker-runner.ts')).WorkerRunnerHost();
  if (kind === 'aws') return (await import('../host/aws.ts')).awsHost(config);
  return localHost;
}

/** The one startup line: the host kind and every identity the worker found. */
export function logIdentity(log: WorkerLog, kind: HostKind, config: WorkerConfig, found: HostConfiguration): void {
  log.info('worker identity', {
    host: kind, configSource: found.source,
    provisionerId: config.provisionerId, workerType: config.workerType, workerGroup: config.workerGroup, workerId: config.workerId,
    capacity: config.capacity, instanceType: config.host.instanceType, instanceId: config.host.instanceId || undefined,
    region: config.host.region || undefined, publicIp: config.host.publicIp, privateIp: config.host.privateIp || undefined,
    publicHostname: config.host.publicHostname || undefined, workerLocation: config.host.workerLocation || undefined,
    rootUrl: config.rootUrl || 'embedded', clientId: config.rootUrl ? config.credentials.clientId : undefined,
    ...(found.ignored.length ? { ignoredSettings: found.ignored } : {}),
  });
}

export async function start(argv: string[]): Promise<number> {
  // Listened for from the first instruction: SIGTERM while the worker is still starting (systemd
  // stopping a booting instance, a spot notice during the metadata reads) stops it cleanly, never
  // by the signal's default (the process killed with whatever it had started).
  const signal = untilSignal();
  let received: NodeJS.Signals | undefined;
  void signal.then((sig) => { received = sig; });
  const { values, positionals } = parseArgs({
    args: argv,
    // docker-worker took a profile name (worker-runner still passes `production`): accepted, unused.
    allowPositionals: true,
    options: {
      host: { type: 'string', default: 'local' },
      'provisioner-id': { type: 'string' }, 'worker-type': { type: 'string' }, 'worker-group': { type: 'string' },
      'worker-id': { type: 'string' }, capacity: { type: 'string' }, config: { type: 'string' },
    },
  });
  if (positionals.length > 1) throw new ConfigError(`worker start takes no arguments besides an optional profile name, not ${positionals.join(' ')}`);
  const kind = values.host as HostKind;
  if (!HOST_KINDS.includes(kind)) throw new ConfigError(`--host must be one of ${HOST_KINDS.join(', ')}, not ${values.host}`);
  const overrides = {
    provisionerId: values['provisioner-id'], workerType: values['worker-type'], workerGroup: values['worker-group'],
    workerId: values['worker-id'], capacity: values.capacity === undefined ? undefined : Number(values.capacity),
  };
  // Before the host is asked, the config without it (where to find the metadata service).
  let config = loadConfig({ file: values.config, overrides });
  const host = await createHost(kind, () => config);
  let closeEmbedded: (() => Promise<void>) | undefined;
  /** A step of start-up, abandoned when a signal comes first. */
  const unlessSignalled = <T>(step: Promise<T>): Promise<T> => Promise.race([step, signal.then((sig): never => { throw new StartupInterrupted(sig); })]);
  try {
    const found = await unlessSignalled(host.configure());
    config = loadConfig({ file: values.config, host: found.settings, overrides });
    const log = createWorkerLog({ level: config.logLevel });
    logIdentity(log, kind, config, found);
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
      if (received) throw new StartupInterrupted(received);
      deployment = { rootUrl: embedded.rootUrl, credentials: { clientId: embedded.credentials.clientId, accessToken: embedded.credentials.accessToken } };
      process.stdout.write(`embedded deployment: ${embedded.rootUrl}\ncredentials: ${embedded.credentialsFile}\n`);
    }
    // Not abandoned half-way: a signal during it shuts the started worker down at once below.
    const worker = await startWorker(config, deployment, log);
    host.attach({ shutdown: (reason, options) => worker.shutdown(reason, options), replaceCredentials: (c) => worker.replaceCredentials(c) }, log);
    await Promise.race([worker.stopped, signal.then((sig) => worker.shutdown(sig))]);
    await worker.stopped;
    if (worker.stopReason === 'idle') await host.idleShutdown(log);
  } catch (err) {
    if (!(err instanceof StartupInterrupted)) throw err;
    process.stderr.write(`worker start: ${err.message}\n`);
  } finally {
    await host.close();
    await closeEmbedded?.();
  }
  // Whatever handle may still be open (a keep-alive socket, a timer of a library), the worker
  // has stopped: the process exits shortly after (worker-runner waits for it).
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
  return 0;
}
