// The `sidecars` setting: containers an operator runs beside a task that asks for them
// (payload.features.<name>), on the task's own network, under an alias. balrogVPNProxy and
// balrogStageVPNProxy are presets: the operator only names the image (and its env); alias,
// capabilities, devices and readiness probe are docker-worker's.

export interface ReadinessProbe {
  /** HTTP port of the sidecar probed from the host. */
  port: number;
  /** Default "/". */
  path?: string;
  /** The status that means ready (default: any answer below 500). */
  status?: number;
  /** Default 15. */
  tries?: number;
  /** Default 1000. */
  intervalMs?: number;
}

export interface SidecarSetting {
  /** A local image (name, name:tag or id): sidecar images are not pulled. */
  image: string;
  command?: string[];
  env?: Record<string, string>;
  /** Linux capabilities added (e.g. NET_ADMIN). */
  capabilities?: string[];
  /** Host device paths, mapped at the same path. */
  devices?: string[];
  /** The name the task reaches the sidecar under (default: the feature's name). */
  alias?: string;
  readiness?: ReadinessProbe;
  /** The scope a task needs (default docker-worker:feature:<name>). */
  requiredScope?: string;
}

const BALROG: Omit<SidecarSetting, 'image'> = {
  alias: 'balrog', capabilities: ['NET_ADMIN'], devices: ['/dev/net/tun'],
  readiness: { port: 80, path: '/', status: 401, tries: 15, intervalMs: 1000 },
};

/** docker-worker's sidecar features: what they need, short of the image. */
export const SIDECAR_PRESETS: Readonly<Record<string, Omit<SidecarSetting, 'image'>>> = {
  balrogVPNProxy: BALROG,
  balrogStageVPNProxy: BALROG,
};

/** The preset under the operator's setting; undefined when no image is configured. */
export function sidecarSetting(name: string, configured: Partial<SidecarSetting> | undefined): SidecarSetting | undefined {
  if (!configured?.image) return undefined;
  const preset = SIDECAR_PRESETS[name] ?? {};
  return { ...preset, ...configured, image: configured.image, readiness: configured.readiness ?? preset.readiness };
}

export function sidecarScope(name: string, setting?: Partial<SidecarSetting>): string {
  return setting?.requiredScope ?? `docker-worker:feature:${name}`;
}

/** Checks the `sidecars` setting (convict format): throws a sentence naming the bad entry. */
export function sidecarsFormat(value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('must be an object of "<feature name>": {"image", ...}');
  for (const [name, raw] of Object.entries(value)) {
    const s = raw as Record<string, unknown>;
    const bad = (what: string) => new Error(`sidecars.${name}: ${what}`);
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) throw bad('the name must be letters, digits, "_" or "-"');
    if (!s || typeof s !== 'object') throw bad('must be an object');
    if (typeof s.image !== 'string' || !s.image) throw bad('"image" (a local image) is required');
    const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
    for (const key of ['command', 'capabilities', 'devices'] as const) if (s[key] !== undefined && !strings(s[key])) throw bad(`"${key}" must be a list of strings`);
    if (s.env !== undefined && (typeof s.env !== 'object' || s.env === null || !Object.values(s.env).every((v) => typeof v === 'string'))) throw bad('"env" must map names to strings');
    for (const key of ['alias', 'requiredScope'] as const) if (s[key] !== undefined && typeof s[key] !== 'string') throw bad(`"${key}" must be a string`);
    if (s.readiness !== undefined) {
      const r = s.readiness as Record<string, unknown>;
      if (!r || typeof r.port !== 'number') throw bad('"readiness" needs a "port"');
      for (const key of ['status', 'tries', 'intervalMs'] as const) if (r[key] !== undefined && typeof r[key] !== 'number') throw bad(`"readiness.${key}" must be a number`);
    }
    const known = new Set(['image', 'command', 'env', 'capabilities', 'devices', 'alias', 'readiness', 'requiredScope']);
    for (const key of Object.keys(s)) if (!known.has(key)) throw bad(`unknown key "${key}"`);
  }
}
