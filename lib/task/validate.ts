// Stage 1 of the task pipeline: is this payload one docker-worker can run? The JSON schema
// (schemas/payload.json, compiled once) plus the rules a schema cannot say. Every problem is
// reported at once, in plain words naming the field. Scopes are checked by the plan stage.
import { Ajv } from 'ajv';
import formatsPlugin from 'ajv-formats';
import schema from '../../schemas/payload.json' with { type: 'json' };
import { FEATURES, RETIRED_FEATURES, featureInfo, isRetiredFeature } from './feature-catalog.ts';
import { isReservedEnvName } from './reserved-env.ts';
import { describeSchemaErrors, payloadField, shown } from './schema-errors.ts';
import { DEVICE_NAMES } from './types.ts';
import type { FeatureName, Payload, TaskDefinition } from './types.ts';

/**
 * The features this build provides. The orchestrator adds a feature here when its
 * implementation is registered; a payload may set any other feature to false, never to true.
 */
export const IMPLEMENTED_FEATURES: Set<FeatureName> = new Set<FeatureName>(['localLiveLog', 'bulkLog', 'artifacts']);

export type ValidationResult =
  | { ok: true; payload: Payload; warnings: string[] }
  | { ok: false; errors: string[]; warnings: string[] };

export interface ValidateOptions {
  /** Defaults to IMPLEMENTED_FEATURES. */
  implementedFeatures?: ReadonlySet<string>;
}

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv;
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false });
addFormats(ajv);
ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
const schemaCheck = ajv.compile(schema);

const KNOWN_FIELDS = new Set(Object.keys(schema.properties));

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function validatePayload(payload: unknown, task: Pick<TaskDefinition, 'expires'>, options: ValidateOptions = {}): ValidationResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (!schemaCheck(payload)) errors.push(...describeSchemaErrors(schemaCheck.errors ?? []));
  if (isObject(payload)) {
    checkImage(payload.image, errors);
    checkEnv(payload.env, errors, warnings);
    checkCache(payload.cache, errors);
    checkArtifacts(payload.artifacts, task.expires, errors);
    checkFeatures(payload.features, options.implementedFeatures ?? IMPLEMENTED_FEATURES, errors, warnings);
    checkCapabilities(payload.capabilities, errors, warnings);
    checkTopLevelFields(payload, warnings);
  }
  const unique = [...new Set(errors)];
  if (unique.length > 0) return { ok: false, errors: unique, warnings };
  const valid = { ...(payload as Payload) };
  if (isObject(valid.env)) {
    valid.env = Object.fromEntries(Object.entries(valid.env as Json).map(([k, v]) => [k, typeof v === 'string' ? v : envText(v)]));
  }
  return { ok: true, payload: valid, warnings };
}

function checkImage(image: unknown, errors: string[]): void {
  if (typeof image === 'string' && image.trim() === '') errors.push('payload.image must name an image, got ""');
  if (!isObject(image)) return;
  for (const field of ['name', 'namespace', 'path', 'taskId']) {
    if (image[field] === '') errors.push(`payload.image.${field} must not be empty`);
  }
}

/** How a non-string env value reaches the container. */
export function envText(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

function checkEnv(env: unknown, errors: string[], warnings: string[]): void {
  if (!isObject(env)) return;
  for (const [name, value] of Object.entries(env)) {
    if (name === '' || name.includes('=')) {
      errors.push(`payload.env has a variable named ${JSON.stringify(name)}; names cannot be empty or contain "="`);
      continue;
    }
    if (typeof value !== 'string') {
      // The 2014 and 2018 schemas allowed any value and docker-worker wrote `${name}=${value}`:
      // such payloads keep working, with the value turned into text and a warning.
      warnings.push(`${payloadField('env', name)} is ${shown(value)}, not a string; it is passed as ${JSON.stringify(envText(value))}`);
    } else if (isReservedEnvName(name)) {
      warnings.push(`${payloadField('env', name)} is set by the worker; the payload's value is ignored`);
    }
  }
}

function checkCache(cache: unknown, errors: string[]): void {
  if (!isObject(cache)) return;
  for (const [name, mountPoint] of Object.entries(cache)) {
    if (name === '' || name.includes('::') || name.includes('/')) {
      errors.push(`payload.cache has a cache named ${JSON.stringify(name)}; cache names cannot be empty or contain "/" or "::"`);
    }
    if (typeof mountPoint !== 'string') {
      errors.push(`${payloadField('cache', name)} must be the cache's mount point in the container (a string), got ${shown(mountPoint)}`);
    } else if (!mountPoint.startsWith('/')) {
      errors.push(`${payloadField('cache', name)} must be an absolute path in the container, got ${shown(mountPoint)}`);
    }
  }
}

function checkArtifacts(artifacts: unknown, taskExpires: string | undefined, errors: string[]): void {
  if (!isObject(artifacts)) return;
  const taskExpiry = taskExpires ? Date.parse(taskExpires) : NaN;
  for (const [name, artifact] of Object.entries(artifacts)) {
    if (name === '') errors.push('payload.artifacts has an artifact with an empty name');
    if (!isObject(artifact) || typeof artifact.expires !== 'string') continue;
    const expiry = Date.parse(artifact.expires);
    if (Number.isNaN(expiry) || Number.isNaN(taskExpiry) || expiry <= taskExpiry) continue;
    errors.push(
      `${payloadField('artifacts', name)}.expires is ${artifact.expires}, later than the task's expires ${taskExpires}; ` +
      'an artifact cannot outlive its task: remove expires or set it no later than the task\'s',
    );
  }
}

function checkFeatures(features: unknown, implemented: ReadonlySet<string>, errors: string[], warnings: string[]): void {
  if (!isObject(features)) return;
  const known = FEATURES.map((f) => f.name).join(', ');
  for (const [name, value] of Object.entries(features)) {
    if (value === false) {
      if (!featureInfo(name) && !isRetiredFeature(name)) warnings.push(`${payloadField('features', name)} is not a docker-worker feature and is ignored`);
      continue;
    }
    if (!featureInfo(name) && !isRetiredFeature(name)) {
      errors.push(`${payloadField('features', name)} is not a docker-worker feature; the features are: ${known}`);
    } else if (value !== true) {
      continue; // the schema reports values that are not true or false
    } else if (isRetiredFeature(name)) {
      errors.push(`${payloadField('features', name)} is no longer supported (${RETIRED_FEATURES[name]}); remove it`);
    } else if (!implemented.has(name)) {
      errors.push(`${payloadField('features', name)} is not available on this worker; remove it or set it to false`);
    }
  }
}

function checkCapabilities(capabilities: unknown, errors: string[], warnings: string[]): void {
  if (!isObject(capabilities)) return;
  for (const name of Object.keys(capabilities)) {
    if (!['privileged', 'disableSeccomp', 'devices'].includes(name)) {
      warnings.push(`${payloadField('capabilities', name)} is not a docker-worker capability and is ignored`);
    }
  }
  const devices = capabilities.devices;
  if (!isObject(devices)) return;
  for (const [name, value] of Object.entries(devices)) {
    if ((DEVICE_NAMES as readonly string[]).includes(name) || value === false) continue;
    if (name === 'phone') {
      errors.push('payload.capabilities.devices.phone (a Testdroid phone) is no longer provided by any worker; remove it');
    } else {
      errors.push(`${payloadField('capabilities', 'devices', name)} is not a device docker-worker can attach; the devices are: ${DEVICE_NAMES.join(', ')}`);
    }
  }
}

function checkTopLevelFields(payload: Json, warnings: string[]): void {
  for (const name of Object.keys(payload)) {
    if (name === 'graphs') warnings.push('payload.graphs is ignored: the scheduler whose task graphs it extended no longer exists');
    else if (!KNOWN_FIELDS.has(name)) warnings.push(`${payloadField(name)} is not a docker-worker payload field and is ignored`);
  }
}
