// allowPtrace (payload.features.allowPtrace; scope docker-worker:feature:allowPtrace, refused
// with docker-worker's sentence without it): processes of the task container may trace one
// another (strace, gdb -p). The plan adds CAP_SYS_PTRACE (pure: both cases have it); before the
// container is created lib/apparmor/allow-ptrace.ts decides the rest at run time: where the
// kernel has AppArmor, a per-run profile allowing ptrace within the container is loaded and
// the container runs under it (`apparmor=<profile>`); elsewhere nothing more. The profile is
// removed in cleanup, on every path.
import { prepareAllowPtrace, type AllowPtrace } from '../apparmor/allow-ptrace.ts';
import { ALLOW_PTRACE_SCOPE, allowPtraceHostConfig, allowPtraceScopeError } from '../apparmor/ptrace-profile.ts';
import type { Feature } from './feature.ts';

const PLANNED_CAPS = allowPtraceHostConfig(undefined).CapAdd;

export const allowPtrace: Feature<Record<string, never>> = {
  name: 'allowPtrace',
  defaultEnabled: false,
  requiredScope: ALLOW_PTRACE_SCOPE,
  scopeSummary: allowPtraceScopeError,
  plan: () => ({ options: {}, container: { capAdd: [...PLANNED_CAPS] } }),
  forTask: (ctx) => {
    let prepared: AllowPtrace | undefined;
    return {
      async beforeCreate() {
        prepared = await prepareAllowPtrace({ taskId: ctx.taskId, runId: ctx.runId });
        if (prepared.profileName) ctx.log.info('loaded AppArmor profile for allowPtrace', { taskId: ctx.taskId, runId: ctx.runId, profile: prepared.profileName });
        const { CapAdd, SecurityOpt } = prepared.hostConfig;
        return { container: { capAdd: CapAdd.filter((c) => !PLANNED_CAPS.includes(c)), securityOpt: SecurityOpt } };
      },
      async cleanup() {
        await prepared?.release().catch((err: Error) =>
          ctx.log.error('could not remove the AppArmor profile of allowPtrace', { taskId: ctx.taskId, runId: ctx.runId, profile: prepared?.profileName, error: err.message }));
      },
    };
  },
};
