// A configuration in docker-worker's own shape (what worker-runner writes to
// $DOCKER_WORKER_CONFIG, what aws-provisioner put in `data`, what operators kept in user-data)
// as this worker's settings. Pure: tested in test/unit/host-config.test.ts.
//
// docker-worker names that differ from ours are translated; a dotted key this worker has under
// the same name is taken as is; anything else is ignored and named (docker-worker had many
// settings this worker does not: a worker pool's config must not stop the worker from starting).
import { configSchema } from '../config/schema.ts';

export interface TranslatedConfig {
  settings: Record<string, unknown>;
  ignored: string[];
}

/** docker-worker's key → ours. */
const RENAMED: Record<string, string> = {
  'taskcluster.clientId': 'credentials.clientId',
  'taskcluster.accessToken': 'credentials.accessToken',
  'taskcluster.certificate': 'credentials.certificate',
  publicIp: 'host.publicIp',
  privateIp: 'host.privateIp',
  instanceType: 'host.instanceType',
  workerNodeType: 'host.instanceType',
  instanceId: 'host.instanceId',
  region: 'host.region',
  host: 'host.publicHostname',
  workerLocation: 'host.workerLocation',
  'dockerConfig.allowPrivileged': 'allowPrivileged',
  'deviceManagement.kvm.enabled': 'devices.kvm.enabled',
  'deviceManagement.hostSharedMemory.enabled': 'devices.hostSharedMemory.enabled',
  'deviceManagement.loopbackVideo.enabled': 'devices.loopbackVideo.enabled',
  'deviceManagement.loopbackAudio.enabled': 'devices.loopbackAudio.enabled',
};

/** Settings whose value is a JSON string here but may be an object there. */
const JSON_STRING = new Set(['host.workerLocation', 'credentials.certificate']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The dotted keys of our schema that hold a value (not a group). */
function schemaKeys(): Set<string> {
  const keys = new Set<string>();
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(node)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (isPlainObject(v) && 'default' in v && 'doc' in v) keys.add(key);
      else if (isPlainObject(v)) walk(v, key);
    }
  };
  walk(configSchema as unknown as Record<string, unknown>, '');
  return keys;
}
const OURS = schemaKeys();

/** Every leaf of a nested object as [dotted key, value]; `registries` (keyed by hosts) stays whole. */
function leaves(value: Record<string, unknown>, prefix = ''): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    // A renamed key is a leaf, or an object kept whole as JSON (a certificate, workerLocation);
    // docker-worker's `host` is a host name, so a `host` object is ours (host.region, ...).
    const renamedLeaf = RENAMED[key] !== undefined && (!isPlainObject(v) || JSON_STRING.has(RENAMED[key]));
    if (key === 'registries' || renamedLeaf || OURS.has(key) || !isPlainObject(v) || Object.keys(v).length === 0) out.push([key, v]);
    else out.push(...leaves(v, key));
  }
  return out;
}

export function translateDockerWorkerConfig(raw: Record<string, unknown>): TranslatedConfig {
  const settings: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [key, value] of leaves(raw)) {
    if (value === undefined || value === null) continue;
    if (key === 'shutdown.enabled') {
      // docker-worker's switch for idle shutdown: off means never.
      if (value === false) settings['shutdown.afterIdleSeconds'] = 0;
      continue;
    }
    const ours = RENAMED[key] ?? (OURS.has(key) || key === 'registries' ? key : undefined);
    if (!ours) { ignored.push(key); continue; }
    if (ours === 'shutdown.afterIdleSeconds' && raw.shutdown && (raw.shutdown as Record<string, unknown>).enabled === false) continue;
    settings[ours] = JSON_STRING.has(ours) && typeof value !== 'string' ? JSON.stringify(value) : value;
  }
  return { settings, ignored: ignored.sort() };
}
