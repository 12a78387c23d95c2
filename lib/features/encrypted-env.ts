// encryptedEnv (a payload field, not a `features` switch: on whenever payload.encryptedEnv has
// entries): each entry is decrypted with the worker's OpenPGP key and checked as docker-worker
// checked it (lib/crypto/encrypted-env.ts) before the image is prepared. The variables join the
// container's env (the payload's own env and the worker's reserved names cannot be overridden:
// the checks refuse both) and every value is masked in the task log from then on. A violation
// refuses the run (exception/malformed-payload) with docker-worker's line
// `secret data violation -- <reason>; incidentId: <uuid>`; the worker log gets the detail
// (variable name, times; never a value) under the same incident id.
import { decryptEncryptedEnv, EncryptedEnvError } from '../crypto/encrypted-env.ts';
import { RESERVED_ENV_NAMES } from '../task/reserved-env.ts';
import { NOTHING_TO_CLEAN, type Feature } from './feature.ts';

export interface EncryptedEnvOptions {
  /** payload.env's names: a name set there may not also come encrypted. */
  payloadEnvNames: string[];
}

export const encryptedEnv: Feature<EncryptedEnvOptions> = {
  name: 'encryptedEnv',
  defaultEnabled: false,
  enabledBy: (payload) => (payload.encryptedEnv?.length ?? 0) > 0,
  // The entries themselves are in the plan already (ContainerPlan.encryptedEnv).
  plan: ({ payload }) => ({ options: { payloadEnvNames: Object.keys(payload.env ?? {}).sort() } }),
  forTask: (ctx) => ({
    async beforeCreate() {
      if (!ctx.keys) throw new Error('this worker was started without its keys, so it cannot decrypt payload.encryptedEnv');
      let env: Record<string, string>;
      try {
        env = await decryptEncryptedEnv(ctx.plan.encryptedEnv, await ctx.keys.openpgp(), {
          taskId: ctx.taskId, payloadEnv: Object.fromEntries(ctx.options.payloadEnvNames.map((n) => [n, true])), reservedNames: RESERVED_ENV_NAMES,
        });
      } catch (err) {
        if (!(err instanceof EncryptedEnvError)) throw err;
        ctx.log.warn(err.kind === 'violation' ? 'secret data violation' : 'unreadable encryptedEnv', {
          taskId: ctx.taskId, runId: ctx.runId, detail: err.detail, ...(err.incidentId ? { incidentId: err.incidentId } : {}),
        });
        return { refusal: err.message };
      }
      // maskedSecrets reach the task log before anything else is written to it.
      return { container: { env, maskedSecrets: Object.values(env) } };
    },
    cleanup: NOTHING_TO_CLEAN,
  }),
};

