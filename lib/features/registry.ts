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

export const FEATURES: readonly Feature[] = [
  localLiveLog,
  bulkLog,
  artifacts,
  encryptedEnv,
  allowPtrace,
  dockerSave,
  interactive,
  // Last: its logComplete lists every artifact uploaded before it, the bulk log included.
  chainOfTrust,
] as Feature[];
