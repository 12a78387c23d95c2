// Loads the worker configuration with convict: defaults, an optional file (JSON or YAML),
// the environment, then command-line overrides. Any bad or unknown key is a ConfigError
// naming the key.
import convict from 'convict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type YAMLModule from 'yaml';
import { configSchema, registriesFormat } from './schema.ts';
import { sidecarsFormat } from '../features/sidecar-setting.ts';

type Schema = typeof configSchema;
type Value<S> = S extends { default: infer D; format: infer F }
  ? (F extends BooleanConstructor ? boolean : F extends 'nat' | 'port' ? number : F extends readonly string[] ? F[number] : D)
  : { [K in keyof S]: Value<S[K]> };
export type WorkerConfig = Value<Schema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Settings whose value is an object keyed by names that convict would split on their dots
 * (registry hosts such as "127.0.0.1:5000") or cannot load into a leaf (sidecars): layered
 * here, with the same order (default < host < file < environment < overrides), each checked
 * by its schema format.
 */
const OBJECT_SETTINGS = {
  registries: { env: 'WORKER_REGISTRIES', format: registriesFormat },
  sidecars: { env: 'WORKER_SIDECARS', format: sidecarsFormat },
} as const;
type ObjectSetting = keyof typeof OBJECT_SETTINGS;
const isObjectSetting = (key: string): key is ObjectSetting => Object.hasOwn(OBJECT_SETTINGS, key);

/**
 * Overrides as dotted keys, e.g. {'capacity': 4, 'workerType': 't'}. `host`: settings the host
 * gave (dotted keys, see lib/host/), layered over the defaults and under the file.
 */
export function loadConfig(options: { file?: string; host?: Record<string, unknown>; overrides?: Record<string, unknown>; env?: NodeJS.ProcessEnv } = {}): WorkerConfig {
  const { registries: _r, sidecars: _s, ...schema } = configSchema;
  const config = convict(schema as never, { env: options.env ?? process.env, args: [] });
  const objects: Record<ObjectSetting, unknown> = { registries: {}, sidecars: {} };
  const env = options.env ?? process.env;
  if (options.host) {
    for (const key of Object.keys(OBJECT_SETTINGS) as ObjectSetting[]) if (options.host[key] !== undefined) objects[key] = options.host[key];
    try { config.load(nestSettings(options.host)); } catch (e) { throw new ConfigError(`settings from the host: ${(e as Error).message}`); }
  }
  if (options.file) {
    let text: string;
    try { text = readFileSync(options.file, 'utf8'); } catch (e) {
      throw new ConfigError(`cannot read config file ${options.file}: ${(e as Error).message}`);
    }
    let data: unknown;
    // JSON as it is; the YAML parser (a few MB resident) only for a file that is not JSON.
    try { data = JSON.parse(text); } catch { data = undefined; }
    if (data === undefined) try { data = yamlParser().parse(text); } catch (e) {
      throw new ConfigError(`config file ${options.file} is neither JSON nor YAML: ${(e as Error).message}`);
    }
    if (data !== null && (typeof data !== 'object' || Array.isArray(data))) throw new ConfigError(`config file ${options.file} must hold an object of settings`);
    const rest = { ...(data ?? {}) as Record<string, unknown> };
    for (const key of Object.keys(OBJECT_SETTINGS) as ObjectSetting[]) {
      if (rest[key] !== undefined) objects[key] = rest[key];
      delete rest[key];
    }
    try { config.load(rest); } catch (e) { throw new ConfigError(`config file ${options.file}: ${(e as Error).message}`); }
  }
  for (const [key, setting] of Object.entries(OBJECT_SETTINGS) as Array<[ObjectSetting, { env: string }]>) {
    const raw = env[setting.env];
    if (!raw) continue;
    try { objects[key] = JSON.parse(raw); } catch (e) {
      throw new ConfigError(`${setting.env} must be JSON: ${(e as Error).message}`);
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    if (isObjectSetting(key)) { objects[key] = value; continue; }
    if (!config.has(key as never)) throw new ConfigError(`unknown setting ${key}`);
    try { config.set(key as never, value as never); } catch (e) { throw new ConfigError(`setting ${key}: ${(e as Error).message}`); }
  }
  try {
    config.validate({ allowed: 'strict' });
  } catch (e) {
    throw new ConfigError(`invalid configuration: ${(e as Error).message}`);
  }
  for (const [key, setting] of Object.entries(OBJECT_SETTINGS) as Array<[ObjectSetting, { format(v: unknown): void }]>) {
    try { setting.format(objects[key]); } catch (e) { throw new ConfigError(`setting ${key}: ${(e as Error).message}`); }
  }
  return { ...(config.getProperties() as object), ...objects } as unknown as WorkerConfig;
}

/** The YAML parser, loaded for the first config file that is not JSON (a few MB resident). */
function yamlParser(): typeof YAMLModule {
  return createRequire(import.meta.url)('yaml') as typeof YAMLModule;
}

/** Dotted keys back into the nested object convict loads (the object settings stay out). */
export function nestSettings(settings: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (isObjectSetting(key)) continue;
    const parts = key.split('.');
    let node = out;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    node[parts.at(-1)!] = value;
  }
  return out;
}

/** The documented keys, for `worker config`: [key, default, env, doc]. */
export function describeConfig(): [string, string, string, string][] {
  const rows: [string, string, string, string][] = [];
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(node)) {
      const item = v as Record<string, unknown>;
      const key = prefix ? `${prefix}.${k}` : k;
      if (item && 'doc' in item && 'default' in item) {
        rows.push([key, JSON.stringify(item.sensitive ? '' : item.default), (item.env as string) ?? '', item.doc as string]);
      } else walk(item, key);
    }
  };
  walk(configSchema as unknown as Record<string, unknown>, '');
  return rows;
}
