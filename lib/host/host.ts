// Where the worker learns who it is and hears from the machine it runs on. `worker start
// --host <kind>` picks one:
//   local          the config file, environment and flags alone (the default)
//   worker-runner  Taskcluster's worker-runner started us: config from $DOCKER_WORKER_CONFIG,
//                  messages on stdin/stdout (runner-protocol.ts)
//   aws            an EC2 instance: identity and config from the instance metadata service,
//                  spot termination notices (aws.ts)
// A host hands the CLI settings (layered over the defaults, under the config file, the
// environment and the flags), then, once the worker runs, tells it to stop or to take new
// credentials; when the worker stopped for being idle, the host does what that machine does.
import type { Credentials } from '../queue/taskcluster.ts';
import type { WorkerLog } from '../log/worker-log.ts';

export const HOST_KINDS = ['local', 'worker-runner', 'aws'] as const;
export type HostKind = (typeof HOST_KINDS)[number];

export interface HostConfiguration {
  /** Settings as dotted keys of the config schema ({'capacity': 2, 'host.region': 'us-east-1'}). */
  settings: Record<string, unknown>;
  /** Where the settings came from, for the startup line (never a secret). */
  source: string;
  /** Keys of the host's config this worker does not know: ignored, named in the startup line. */
  ignored: string[];
}

/** What a host may ask of the running worker. */
export interface HostControls {
  shutdown(reason: string, options?: { finishTasks?: boolean }): Promise<void>;
  replaceCredentials(credentials: Credentials): void;
}

export interface WorkerHost {
  readonly kind: HostKind;
  /** Learns the worker's identity and configuration from the host. */
  configure(): Promise<HostConfiguration>;
  /** The worker runs: from now on the host may stop it or hand it new credentials. */
  attach(controls: HostControls, log: WorkerLog): void;
  /** The worker stopped after shutdown.afterIdleSeconds without a task: what this host does then. */
  idleShutdown(log: WorkerLog): Promise<void>;
  /** Stops watching the host (timers, stdin); never throws. */
  close(): Promise<void>;
}

/** The local host: nothing to learn beyond the config, nothing to watch. */
export const localHost: WorkerHost = {
  kind: 'local',
  configure: async () => ({ settings: {}, source: 'config file, environment and flags', ignored: [] }),
  attach: () => {},
  idleShutdown: async () => {},
  close: async () => {},
};
