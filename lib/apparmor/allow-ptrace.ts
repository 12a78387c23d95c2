// allowPtrace for one task run, host side: on a kernel with AppArmor, generate and load the
// run's profile and hand back the container settings that use it plus a release() that removes
// it; elsewhere, CAP_SYS_PTRACE alone and nothing to release. release() is safe to call more
// than once and from any path (error, cancel, shutdown); register it for cleanup as soon as
// prepareAllowPtrace() resolves.
import { AppArmorParser, apparmorEnabled } from './apparmor-parser.ts';
import { allowPtraceHostConfig, ptraceProfile, ptraceProfileName } from './ptrace-profile.ts';

export interface AllowPtrace {
  /** Merge into the container's HostConfig: CapAdd and SecurityOpt. */
  hostConfig: { CapAdd: string[]; SecurityOpt: string[] };
  /** The loaded profile's name, or undefined where the kernel has no AppArmor. */
  profileName: string | undefined;
  /** Removes the profile (once); a no-op without one. Rejects with an AppArmorError if removal fails. */
  release(): Promise<void>;
}

export interface AllowPtraceOptions {
  taskId: string;
  runId: number;
  parser?: AppArmorParser;
  /** Whether the kernel has AppArmor enabled (default: read from sysfs). */
  apparmor?: boolean;
  /** The Docker daemon's own AppArmor profile, if it runs confined. */
  daemonProfile?: string;
}

/** Rejects with an AppArmorError (naming the profile) when the profile cannot be loaded. */
export async function prepareAllowPtrace(options: AllowPtraceOptions): Promise<AllowPtrace> {
  const enabled = options.apparmor ?? await apparmorEnabled();
  if (!enabled) return { hostConfig: allowPtraceHostConfig(undefined), profileName: undefined, release: async () => undefined };
  const parser = options.parser ?? new AppArmorParser();
  const name = ptraceProfileName(options.taskId, options.runId);
  const profile = ptraceProfile({ name, daemonProfile: options.daemonProfile });
  await parser.load(profile);
  let removal: Promise<void> | undefined;
  return {
    hostConfig: allowPtraceHostConfig(name),
    profileName: name,
    release: () => (removal ??= parser.remove(profile)),
  };
}
