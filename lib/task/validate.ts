// Stage 1 of the task pipeline: is this payload one docker-worker can run? The JSON schema
// (schemas/payload.json, compiled once) plus the rules a schema cannot say. Every problem is
// reported at once, in plain words naming the field. Scopes are checked by the plan stage.
//
// The schema accepts whatever any older generation accepted, so some switches may hold any
// value (a generation left the object open without declaring them). Those are read as
// docker-worker read its switches — a truthy value means on — with a warning naming the field,
// and handed on as true or false. Refusals beyond the schema, all deliberate: env names that
// are empty or contain "=", cache names that are empty or contain "/" or "::", cache mount
// points that are not absolute paths, empty artifact or image names, artifacts outliving the
// task, encryptedEnv that is not a list of strings, and features this build does not provide
// (lib/features/registry.ts lists the ones it does).
import { Ajv } from 'ajv';
import formatsPlugin from 'ajv-formats';
import schema from '../../schemas/payload.json' with { type: 'json' };
import { RETIRED_FEATURES, isRetiredFeature, knownFeatures } from '../features/catalogue.ts';
import type { Feature } from '../features/feature.ts';
import { FEATURES } from '../features/registry.ts';
import { isReservedEnvName } from './reserved-env.ts';
import { describeSchemaErrors, payloadField, shown } from './schema-errors.ts';
import { DEVICE_NAMES } from './types.ts';
import type { Payload, TaskDefinition } from './types.ts';

export type ValidationResult =
  | { ok: true; payload: Payload; warnings: string[] }
  | { ok: false; errors: string[]; warnings: string[] };

export interface ValidateOptions {
  /**
   * The features this build provides (default: the registry). A payload may set any other
   * known feature to false, never to true.
   */
  features?: readonly Feature[];
}

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv;
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false });
addFormats(ajv);
ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
const schemaCheck = ajv.compile(schema);

const KNOWN_FIELDS = new Set(Object.keys(schema.properties));
/** Features whose schema entry has a type: the schema itself reports their odd values. */
const TYPED_FEATURES = new Set(Object.entries(schema.properties.features.properties).filter(([, v]) => 'type' in v).map(([k]) => k));

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function validatePayload(payload: unknown, task: Pick<TaskDefinition, 'expires'>, options: ValidateOptions = {}): ValidationResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (!schemaCheck(payload)) errors.push(...describeSchemaErrors(schemaCheck.errors ?? []));
  let features: Json | undefined;
  let capabilities: Json | undefined;
  if (isObject(payload)) {
    checkImage(payload.image, errors);
    checkEnv(payload.env, errors, warnings);
    checkEncryptedEnv(payload.encryptedEnv, errors);
    checkCache(payload.cache, errors);
    checkArtifacts(payload.artifacts, task.expires, errors);
    checkLog(payload.log, warnings);
    features = checkFeatures(payload.features, options.features ?? FEATURES, errors, warnings);
    capabilities = checkCapabilities(payload.capabilities, errors, warnings);
    checkTopLevelFields(payload, warnings);
  }
  const unique = [...new Set(errors)];
  if (unique.length > 0) return { ok: false, errors: unique, warnings };
  const valid = { ...(payload as Payload) };
  if (isObject(valid.env)) {
    valid.env = Object.fromEntries(Object.entries(valid.env as Json).map(([k, v]) => [k, typeof v === 'string' ? v : envText(v)]));
  }
  if (features) valid.features = features as Payload['features'];
  if (capabilities) valid.capabilities = capabilities as Payload['capabilities'];
  return { ok: true, payload: valid, warnings };
}

/**
 * A switch as docker-worker read it: true or false as given; any other value by truthiness,
 * with a warning (only where the schema lets such values through).
 */
function switchValue(field: string, value: unknown, warnings: string[]): boolean {
  if (typeof value === 'boolean') return value;
  const on = Boolean(value);
  warnings.push(`${field} is ${shown(value)}, not true or false; it is read as ${on} (as docker-worker did: anything but false, 0, "" and null means true)`);
  return on;
}

function checkLog(log: unknown, warnings: string[]): void {
  if (log === undefined || typeof log === 'string') return;
  warnings.push(`payload.log is ${shown(log)}, not an artifact name; the log keeps its default name public/logs/live.log`);
}

function checkEncryptedEnv(encryptedEnv: unknown, errors: string[]): void {
  if (encryptedEnv === undefined) return;
  if (!Array.isArray(encryptedEnv) || encryptedEnv.some((item) => typeof item !== 'string')) {
    errors.push(`payload.encryptedEnv must be a list of base64 strings, got ${shown(encryptedEnv)}`);
  }
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

/** Checks payload.features; returns them with every docker-worker feature as true or false. */
function checkFeatures(features: unknown, provided: readonly Feature[], errors: string[], warnings: string[]): Json | undefined {
  if (!isObject(features)) return undefined;
  const catalogue = new Map(knownFeatures(provided).map((f) => [f.name, f]));
  const known = [...catalogue.keys()].join(', ');
  const out: Json = { ...features };
  for (const [name, value] of Object.entries(features)) {
    const field = payloadField('features', name);
    if (!catalogue.has(name) && !isRetiredFeature(name)) {
      if (value) errors.push(`${field} is not a docker-worker feature; the features are: ${known}`);
      else warnings.push(`${field} is not a docker-worker feature and is ignored`);
      continue;
    }
    if (typeof value !== 'boolean' && TYPED_FEATURES.has(name)) continue; // the schema reports it
    const on = switchValue(field, value, warnings);
    out[name] = on;
    if (!on) {
      continue;
    } else if (isRetiredFeature(name)) {
      errors.push(`${payloadField('features', name)} is no longer supported (${RETIRED_FEATURES[name]}); remove it`);
    } else if (!catalogue.get(name)?.provided) {
      errors.push(`${payloadField('features', name)} is not available on this worker; remove it or set it to false`);
    }
  }
  return out;
}

/** Devices whose schema entry has a type: the schema itself reports their odd values. */
const TYPED_DEVICES = new Set(Object.entries(schema.properties.capabilities.properties.devices.properties).filter(([, v]) => 'type' in v).map(([k]) => k));

/** Checks payload.capabilities; returns them with disableSeccomp and the devices as true or false. */
function checkCapabilities(capabilities: unknown, errors: string[], warnings: string[]): Json | undefined {
  if (!isObject(capabilities)) return undefined;
  const out: Json = { ...capabilities };
  for (const name of Object.keys(capabilities)) {
    if (!['privileged', 'disableSeccomp', 'devices'].includes(name)) {
      warnings.push(`${payloadField('capabilities', name)} is not a docker-worker capability and is ignored`);
    }
  }
  if (Object.hasOwn(capabilities, 'disableSeccomp')) {
    out.disableSeccomp = switchValue('payload.capabilities.disableSeccomp', capabilities.disableSeccomp, warnings);
  }
  const devices = capabilities.devices;
  if (!isObject(devices)) return out;
  const outDevices: Json = { ...devices };
  out.devices = outDevices;
  for (const [name, value] of Object.entries(devices)) {
    const field = payloadField('capabilities', 'devices', name);
    if ((DEVICE_NAMES as readonly string[]).includes(name)) {
      if (typeof value !== 'boolean' && TYPED_DEVICES.has(name)) continue; // the schema reports it
      outDevices[name] = switchValue(field, value, warnings);
    } else if (name === 'phone') {
      if (value) errors.push('payload.capabilities.devices.phone (a Testdroid phone) is no longer provided by any worker; remove it');
    } else if (value) {
      errors.push(`${field} is not a device docker-worker can attach; the devices are: ${DEVICE_NAMES.join(', ')}`);
    }
  }
  return out;
}

function checkTopLevelFields(payload: Json, warnings: string[]): void {
  for (const name of Object.keys(payload)) {
    if (name === 'graphs') warnings.push('payload.graphs is ignored: the scheduler whose task graphs it extended no longer exists');
    else if (!KNOWN_FIELDS.has(name)) warnings.push(`${payloadField(name)} is not a docker-worker payload field and is ignored`);
  }
}
