// Every payload feature docker-worker knew that this build does not provide: the ones a later
// build may add (known, refused when asked for) and the retired ones (gone for good). The
// features this build provides are registry.ts; everything else derives from the two lists.
import type { Feature } from './feature.ts';

/** A feature docker-worker had that this build lacks: a payload may turn it off, never on. */
export interface UnavailableFeature {
  name: string;
  /** The scope docker-worker asked for it (checked with the payload's other scopes). */
  requiredScope?: string;
  scopeSummary?: string;
}

/** In docker-worker's order; a build that provides one moves it to registry.ts. */
export const UNAVAILABLE_FEATURES: readonly UnavailableFeature[] = [
  { name: 'dind' },
];

/** Features of earlier generations that no worker provides any more, with what became of them. */
export const RETIRED_FEATURES: Readonly<Record<string, string>> = {
  azureLiveLog: 'the Azure live log was replaced by localLiveLog',
  testdroidProxy: 'Testdroid phones are no longer provided',
  bufferLog: 'the buffered log was replaced by localLiveLog and bulkLog',
  extractArtifacts: 'use the artifacts feature (on by default)',
  artifactLog: 'the task log is uploaded by localLiveLog (on by default)',
  extendTaskGraph: 'the scheduler and its task graphs no longer exist',
};

export function isRetiredFeature(name: string): boolean {
  return Object.hasOwn(RETIRED_FEATURES, name);
}

/** What the worker knows about one feature name, given the features this build provides. */
export interface KnownFeature {
  name: string;
  provided: boolean;
  defaultEnabled: boolean;
  requiredScope?: string;
  scopeSummary?: string;
}

/**
 * The `payload.features` switches: provided features first (registry order), then the
 * unavailable ones; retired ones are not listed, nor provided features that follow another
 * payload field (Feature.enabledBy).
 */
export function knownFeatures(provided: readonly Feature[]): KnownFeature[] {
  const names = new Set(provided.map((f) => f.name));
  return [
    ...provided.filter((f) => !f.enabledBy).map((f) => ({ name: f.name, provided: true, defaultEnabled: f.defaultEnabled, ...(f.requiredScope ? { requiredScope: f.requiredScope } : {}), ...(f.scopeSummary ? { scopeSummary: f.scopeSummary } : {}) })),
    ...UNAVAILABLE_FEATURES.filter((f) => !names.has(f.name)).map((f) => ({ ...f, provided: false, defaultEnabled: false })),
  ];
}
