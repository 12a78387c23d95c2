// `--host aws`: an EC2 instance. From the instance metadata service (instance-metadata.ts):
//   instance id → workerId; availability zone → region → workerGroup (as docker-worker did:
//   the zone without its letter); instance type, public/private IPs, public host name.
// From the user-data, in either form real deployments used (user-data settings win over the
// metadata):
//   aws-provisioner  {provisionerId, workerType, capacity, data, securityToken, provisionerBaseUrl}:
//                    `data` is a docker-worker config merged in (the provisioner and its secrets
//                    service are gone: securityToken and provisionerBaseUrl are not used)
//   worker-manager   {workerPoolId, workerGroup, rootUrl, workerConfig, ...}: workerConfig merged in
//                    (registering with worker-manager for credentials is worker-runner's job)
//   plain            a docker-worker (or this worker's) config object
// Once the worker runs, the spot termination notice is polled (host.spotPollSeconds): on a
// notice the worker stops claiming and resolves its running tasks worker-shutdown after
// uploading their logs, and exits. Idle past shutdown.afterIdleSeconds (15 minutes by default
// here, as docker-worker had it), it runs shutdown.powerOffCommand.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { WorkerConfig } from '../config/load.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import { translateDockerWorkerConfig } from './docker-worker-config.ts';
import type { HostConfiguration, HostControls, WorkerHost } from './host.ts';
import { InstanceMetadata } from './instance-metadata.ts';

const run = promisify(execFile);

/** docker-worker's idle shutdown on AWS (per-second billing, but a warm worker is worth keeping a while). */
export const AWS_IDLE_SECONDS = 15 * 60;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The user-data's settings (dotted keys), the form it had, and keys not used. */
export function userDataSettings(text: string | undefined): { settings: Record<string, unknown>; form: string; ignored: string[] } {
  if (text === undefined || text.trim() === '') return { settings: {}, form: 'no user-data', ignored: [] };
  let data: unknown;
  try { data = JSON.parse(text); } catch { return { settings: {}, form: 'user-data that is not JSON (not used)', ignored: [] }; }
  if (!isObject(data)) return { settings: {}, form: 'user-data that is not a JSON object (not used)', ignored: [] };
  if ('provisionerBaseUrl' in data || 'securityToken' in data || ('data' in data && 'workerType' in data)) {
    const inner = translateDockerWorkerConfig(isObject(data.data) ? data.data : {});
    const settings: Record<string, unknown> = { ...inner.settings };
    for (const key of ['provisionerId', 'workerType', 'capacity'] as const) if (data[key] !== undefined) settings[key] = data[key];
    const unused = Object.keys(data).filter((k) => !['provisionerId', 'workerType', 'capacity', 'data', 'rootUrl'].includes(k));
    if (typeof data.rootUrl === 'string') settings.rootUrl = data.rootUrl;
    return { settings, form: 'aws-provisioner user-data', ignored: [...unused.sort(), ...inner.ignored.map((k) => `data.${k}`)] };
  }
  if (typeof data.workerPoolId === 'string' && data.workerPoolId.includes('/')) {
    const [provisionerId, ...rest] = data.workerPoolId.split('/');
    const inner = translateDockerWorkerConfig(isObject(data.workerConfig) ? data.workerConfig : {});
    const settings: Record<string, unknown> = { ...inner.settings, provisionerId, workerType: rest.join('/') };
    if (typeof data.workerGroup === 'string') settings.workerGroup = data.workerGroup;
    if (typeof data.rootUrl === 'string') settings.rootUrl = data.rootUrl;
    const unused = Object.keys(data).filter((k) => !['workerPoolId', 'workerGroup', 'rootUrl', 'workerConfig'].includes(k));
    return { settings, form: 'worker-manager user-data', ignored: [...unused.sort(), ...inner.ignored.map((k) => `workerConfig.${k}`)] };
  }
  const plain = translateDockerWorkerConfig(data);
  return { settings: plain.settings, form: 'user-data config', ignored: plain.ignored };
}

export class AwsHost implements WorkerHost {
  readonly kind = 'aws' as const;
  readonly #config: () => WorkerConfig;
  #metadata: InstanceMetadata | undefined;
  #poll: NodeJS.Timeout | undefined;
  #closed = false;

  /** `config`: the configuration as far as it is known (the metadata URL before configure(), everything after). */
  constructor(config: () => WorkerConfig) {
    this.#config = config;
  }

  get #imds(): InstanceMetadata {
    return (this.#metadata ??= new InstanceMetadata({ url: this.#config().host.metadataUrl }));
  }

  async configure(): Promise<HostConfiguration> {
    const md = this.#imds;
    // instance-id and user-data must answer (or say 404); the rest the identity can do without.
    const unanswered: string[] = [];
    const optional = (path: string) => md.get(`latest/meta-data/${path}`).catch(() => { unanswered.push(path); return undefined; });
    const [instanceId, userData, instanceType, zone, region, publicIp, privateIp, publicHostname] = await Promise.all([
      md.get('latest/meta-data/instance-id'), md.get('latest/user-data'),
      optional('instance-type'), optional('placement/availability-zone'), optional('placement/region'),
      optional('public-ipv4'), optional('local-ipv4'), optional('public-hostname'),
    ]);
    if (!instanceId) throw new Error(`the instance metadata service at ${this.#config().host.metadataUrl} has no instance-id: is this an EC2 instance?`);
    const theRegion = region ?? zone?.replace(/[a-z]$/, '');
    const settings: Record<string, unknown> = {
      workerId: instanceId, 'host.instanceId': instanceId, 'shutdown.afterIdleSeconds': AWS_IDLE_SECONDS,
      'host.workerLocation': JSON.stringify({ cloud: 'aws', ...(theRegion ? { region: theRegion } : {}), ...(zone ? { availabilityZone: zone } : {}) }),
    };
    if (theRegion) { settings.workerGroup = theRegion; settings['host.region'] = theRegion; }
    if (instanceType) settings['host.instanceType'] = instanceType;
    if (publicIp) settings['host.publicIp'] = publicIp;
    if (privateIp) settings['host.privateIp'] = privateIp;
    if (publicHostname) settings['host.publicHostname'] = publicHostname;
    const user = userDataSettings(userData);
    return {
      settings: { ...settings, ...user.settings, workerId: instanceId },
      source: `EC2 instance metadata${unanswered.length ? ` (no answer for ${unanswered.sort().join(', ')})` : ''} and ${user.form}`,
      ignored: user.ignored,
    };
  }

  attach(controls: HostControls, log: WorkerLog): void {
    const everyMs = this.#config().host.spotPollSeconds * 1000;
    const check = async () => {
      let notice: string | undefined;
      try {
        notice = await this.#imds.get('latest/meta-data/spot/instance-action');
      } catch (err) {
        log.debug('spot termination check failed', { error: (err as Error).message });
      }
      if (this.#closed) return;
      if (notice !== undefined) {
        log.warn('spot termination notice: stopping', { notice });
        void controls.shutdown('spot-termination');
        return;
      }
      this.#poll = setTimeout(() => void check(), everyMs);
    };
    this.#poll = setTimeout(() => void check(), everyMs);
  }

  async idleShutdown(log: WorkerLog): Promise<void> {
    const [command, ...args] = this.#config().shutdown.powerOffCommand.split(' ').filter(Boolean);
    if (!command) { log.info('idle: no power-off command configured'); return; }
    log.info('idle: powering off', { command: [command, ...args].join(' ') });
    try {
      await run(command, args, { timeout: 30_000 });
    } catch (err) {
      log.error('the power-off command failed', { command, error: (err as Error).message });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#poll) clearTimeout(this.#poll);
  }
}

export function awsHost(config: () => WorkerConfig): WorkerHost {
  return new AwsHost(config);
}
