// artifacts (on by default): the payload's `artifacts` are copied out of the container after
// it exits and uploaded (stage 5, lib/task/collect.ts). Turned off, nothing is collected.
import { NOTHING_TO_CLEAN, type Feature } from './feature.ts';
import type { PlannedArtifact } from '../task/types.ts';

export const artifacts: Feature<Record<string, never>> = {
  name: 'artifacts',
  defaultEnabled: true,
  plan: ({ payload, taskExpires }) => ({
    options: {},
    artifacts: Object.keys(payload.artifacts ?? {}).sort().map((name): PlannedArtifact => {
      const a = payload.artifacts![name]!;
      return { name, type: a.type, path: a.path, expires: a.expires ?? taskExpires };
    }),
  }),
  forTask: () => ({ cleanup: NOTHING_TO_CLEAN }),
};
