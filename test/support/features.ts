// Features for tests of the plan and validation: the registry's own, plus a stand-in (plans
// nothing, does nothing) for every feature docker-worker knew that this build lacks, so old
// payloads that ask for them can be planned as a build providing them would.
import { UNAVAILABLE_FEATURES, type UnavailableFeature } from '../../lib/features/catalogue.ts';
import type { Feature } from '../../lib/features/feature.ts';
import { FEATURES } from '../../lib/features/registry.ts';

/** What some stand-ins plan, as docker-worker's own features did (the seam carries it). */
const STAND_IN_PLANS: Record<string, Feature['plan']> = {
  relengAPIProxy: ({ scopes }) => {
    const prefix = 'docker-worker:relengapi-proxy:';
    return { options: { permissions: [...new Set(scopes.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length)))].sort() } };
  },
};

function standIn(known: UnavailableFeature): Feature {
  return {
    name: known.name,
    defaultEnabled: false,
    ...(known.requiredScope ? { requiredScope: known.requiredScope } : {}),
    plan: STAND_IN_PLANS[known.name] ?? (() => ({ options: {} })),
    forTask: () => ({ cleanup: async () => undefined }),
  };
}

export const ALL_FEATURES: readonly Feature[] = [...FEATURES, ...UNAVAILABLE_FEATURES.map(standIn)];

/** Only these features (in registry order), as a build that provides just them. */
export function onlyFeatures(names: Iterable<string>): Feature[] {
  const wanted = new Set(names);
  return ALL_FEATURES.filter((f) => wanted.has(f.name));
}
