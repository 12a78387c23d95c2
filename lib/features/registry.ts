// The features this build provides, in the order the run calls their hooks (cleanup in
// reverse). The one place that says which features exist: validation, the plan, the scope
// checks and the task run all read this list. A new feature is one file and one line here.
import type { Feature } from './feature.ts';
import { localLiveLog } from './local-live-log.ts';
import { bulkLog } from './bulk-log.ts';
import { artifacts } from './artifacts.ts';
import { encryptedEnv } from './encrypted-env.ts';
import { allowPtrace } from './allow-ptrace.ts';
import { chainOfTrust } from './chain-of-trust.ts';
import { dockerSave } from './docker-save.ts';
import { interactive } from './interactive.ts';
import { taskclusterProxy } from './taskcluster-proxy.ts';
import { sidecarFeature } from './sidecar.ts';
import { relengAPIProxy } from './relengapi-proxy.ts';
import { SIDECAR_PRESETS, type SidecarSetting } from './sidecar-setting.ts';

export const FEATURES: readonly Feature[] = [
  localLiveLog,
  bulkLog,
  artifacts,
  encryptedEnv,
  allowPtrace,
  dockerSave,
  interactive,
  taskclusterProxy,
  relengAPIProxy,
  sidecarFeature('balrogVPNProxy'),
  sidecarFeature('balrogStageVPNProxy'),
  // Last: its logComplete lists every artifact uploaded before it, the bulk log included.
  chainOfTrust,
] as Feature[];

/** The registry's features, then one sidecar feature per other name in the `sidecars` setting. */
export function providedFeatures(sidecars: Readonly<Record<string, Partial<SidecarSetting>>> = {}): readonly Feature[] {
  const names = new Set(FEATURES.map((f) => f.name));
  const extra = Object.keys(sidecars).filter((name) => !names.has(name) && !Object.hasOwn(SIDECAR_PRESETS, name));
  return extra.length ? [...FEATURES, ...extra.map((name) => sidecarFeature(name, sidecars[name]) as Feature)] : FEATURES;
}
