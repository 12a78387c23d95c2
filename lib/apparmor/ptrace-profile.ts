// payload.features.allowPtrace on a host whose kernel has AppArmor: the task's container runs
// under a profile of its own, Docker's `docker-default` (moby profiles/apparmor/template.go) with
// `ptrace (trace, read)` allowed toward that same profile, so `strace` and `gdb -p` work between
// the processes of this one container and nowhere else (docker-worker's 2018 approach). Where
// the kernel has no AppArmor the container gets CAP_SYS_PTRACE instead (see allowPtraceHostConfig).
// Pure: text in, text out. Loading and removing it is apparmor-parser.ts.

/** docker-worker's sentence when the scope is missing (malformed-payload). */
export const ALLOW_PTRACE_SCOPE = 'docker-worker:feature:allowPtrace';
export const allowPtraceScopeError = `Insufficient scopes to use 'allowPtrace' feature.  Try adding ${ALLOW_PTRACE_SCOPE} to the .scopes array.`;

export interface PtraceProfileOptions {
  /** The profile's name: one per task run, e.g. ptraceProfileName(taskId, runId). */
  name: string;
  /** Profile of the Docker daemon, which sends signals for `docker kill` (default unconfined). */
  daemonProfile?: string;
  /**
   * Include <tunables/global> and <abstractions/base> as docker-default does when the host has
   * them (Debian's `apparmor` package ships them); default true.
   */
  includes?: boolean;
}

const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** The per-run profile name: safe for apparmor_parser and for `--security-opt apparmor=`. */
export function ptraceProfileName(taskId: string, runId: number): string {
  const name = `docker-worker-ptrace-${taskId}-${runId}`;
  if (!PROFILE_NAME.test(name)) throw new Error(`cannot name an AppArmor profile after task ${JSON.stringify(taskId)} run ${runId}`);
  return name;
}

export function ptraceProfile(options: PtraceProfileOptions): string {
  const { name } = options;
  if (!PROFILE_NAME.test(name)) throw new Error(`${JSON.stringify(name)} is not a valid AppArmor profile name (letters, digits, . _ -)`);
  const daemon = options.daemonProfile ?? 'unconfined';
  if (!PROFILE_NAME.test(daemon)) throw new Error(`${JSON.stringify(daemon)} is not a valid AppArmor profile name`);
  const includes = options.includes ?? true;
  // Without the tunables, @{PROC} (which they define) is declared here.
  return `${includes ? '#include <tunables/global>\n\n' : '@{PROC}=/proc/\n\n'}profile ${name} flags=(attach_disconnected,mediate_deleted) {
${includes ? '  #include <abstractions/base>\n\n' : ''}  network,
  capability,
  file,
  umount,

  # Host (privileged) processes may send signals to container processes.
  signal (receive) peer=unconfined,
  # dockerd may send signals to container processes (for "docker kill").
  signal (receive) peer=${daemon},
  # Container processes may send signals amongst themselves.
  signal (send,receive) peer=${name},

  deny @{PROC}/* w,   # deny write for all files directly in /proc (not in a subdir)
  # deny write to files not in /proc/<number>/** or /proc/sys/**
  deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,
  deny @{PROC}/sys/[^k]** w,  # deny /proc/sys except /proc/sys/k* (effectively /proc/sys/kernel)
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,  # deny everything except shm* in /proc/sys/kernel/
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/kcore rwklx,

  deny mount,

  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/kernel/security/** rwklx,

  # allowPtrace: the processes of this container (and only they) may trace and read each other.
  ptrace (trace, read) peer=${name},
  # ... and be traced and read by each other, as docker-default allows for \`ps\` and \`docker top\`.
  ptrace (tracedby, readby) peer=${name},
}
`;
}

/** The container settings for allowPtrace: the profile where AppArmor runs, else CAP_SYS_PTRACE. */
export function allowPtraceHostConfig(profileName: string | undefined): { CapAdd: string[]; SecurityOpt: string[] } {
  // CAP_SYS_PTRACE in both cases: with Yama's ptrace_scope 1 (Debian's and Ubuntu's default)
  // attaching to a process that is not a descendant (`gdb -p`, `strace -p`) needs it; the
  // profile then keeps the tracing inside the container.
  return { CapAdd: ['SYS_PTRACE'], SecurityOpt: profileName ? [`apparmor=${profileName}`] : [] };
}
