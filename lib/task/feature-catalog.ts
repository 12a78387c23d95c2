// Every payload feature docker-worker ever knew: its default, the scope it needs, and
// whether it was retired. Which ones this build provides is IMPLEMENTED_FEATURES (validate.ts).
import type { FeatureName, RetiredFeatureName } from './types.ts';

export interface FeatureInfo {
  name: FeatureName;
  /** On when the payload does not mention it (docker-worker's own defaults, not the v1 schema's). */
  defaultEnabled: boolean;
  /** A scope task.scopes must satisfy to use the feature, if any. */
  requiredScope?: string;
}

export const FEATURES: readonly FeatureInfo[] = [
  { name: 'localLiveLog', defaultEnabled: true },
  { name: 'bulkLog', defaultEnabled: false },
  { name: 'artifacts', defaultEnabled: true },
  { name: 'taskclusterProxy', defaultEnabled: false },
  { name: 'chainOfTrust', defaultEnabled: false },
  { name: 'allowPtrace', defaultEnabled: false, requiredScope: 'docker-worker:feature:allowPtrace' },
  { name: 'interactive', defaultEnabled: false },
  { name: 'dockerSave', defaultEnabled: false },
  { name: 'dind', defaultEnabled: false },
  { name: 'relengAPIProxy', defaultEnabled: false },
  { name: 'balrogVPNProxy', defaultEnabled: false, requiredScope: 'docker-worker:feature:balrogVPNProxy' },
  { name: 'balrogStageVPNProxy', defaultEnabled: false, requiredScope: 'docker-worker:feature:balrogStageVPNProxy' },
];

/** Features of earlier generations that no worker provides any more, with what became of them. */
export const RETIRED_FEATURES: Readonly<Record<RetiredFeatureName, string>> = {
  azureLiveLog: 'the Azure live log was replaced by localLiveLog',
  testdroidProxy: 'Testdroid phones are no longer provided',
  bufferLog: 'the buffered log was replaced by localLiveLog and bulkLog',
  extractArtifacts: 'use the artifacts feature (on by default)',
  artifactLog: 'the task log is uploaded by localLiveLog (on by default)',
  extendTaskGraph: 'the scheduler and its task graphs no longer exist',
};

const byName = new Map<string, FeatureInfo>(FEATURES.map((f) => [f.name, f]));

export function featureInfo(name: string): FeatureInfo | undefined {
  return byName.get(name);
}

export function isRetiredFeature(name: string): name is RetiredFeatureName {
  return Object.hasOwn(RETIRED_FEATURES, name);
}

/**
 * Whether `payload.features` turns the feature on, read as docker-worker read it: a feature
 * the payload names is on when its value is truthy; one it does not name keeps its default.
 * Used before validation (the live log is set up first); validatePayload warns about values
 * that are not true or false.
 */
export function featureRequested(features: unknown, name: FeatureName): boolean {
  if (typeof features === 'object' && features !== null && !Array.isArray(features) && Object.hasOwn(features, name)) {
    return Boolean((features as Record<string, unknown>)[name]);
  }
  return byName.get(name)?.defaultEnabled ?? false;
}
