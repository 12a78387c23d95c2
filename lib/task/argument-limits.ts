// What Linux lets a command start with (execve): one argument or environment string
// (`NAME=value`, with its terminating NUL) at most MAX_ARG_STRLEN = 131,072 bytes, and all of
// them together at most a quarter of the stack limit (2 MiB with the usual 8 MiB). Past either,
// the container's command fails with "argument list too long" before the task runs a line; the
// worker checks first and says which variable or argument and what the limit is.

export const MAX_ARG_STRLEN = 131_072;
/** A quarter of the default 8 MiB stack limit containers start with. */
export const ARG_MAX = 2 * 1024 * 1024;
const POINTER_BYTES = 8;

const bytes = (s: string) => Buffer.byteLength(s) + 1;
const count = (n: number) => n.toLocaleString('en-US');
const ADVICE = 'Pass large values in a file instead (written by the command, or from an artifact or a cache).';

/** The task-log sentence when `env` and `command` cannot start a process, else undefined. */
export function argumentLimitProblem(env: readonly string[], command: readonly string[]): string | undefined {
  for (const entry of env) {
    if (bytes(entry) > MAX_ARG_STRLEN) {
      const name = entry.slice(0, Math.max(0, entry.indexOf('=')));
      return `The environment variable ${name} is ${count(bytes(entry))} bytes (as NAME=value); Linux starts a command with at most ${count(MAX_ARG_STRLEN)} bytes per variable (MAX_ARG_STRLEN), so the task's command cannot start. ${ADVICE}`;
    }
  }
  for (const [i, arg] of command.entries()) {
    if (bytes(arg) > MAX_ARG_STRLEN) {
      return `Argument ${i + 1} of the command is ${count(bytes(arg))} bytes; Linux starts a command with at most ${count(MAX_ARG_STRLEN)} bytes per argument (MAX_ARG_STRLEN), so the task's command cannot start. ${ADVICE}`;
    }
  }
  const total = [...env, ...command].reduce((sum, s) => sum + bytes(s) + POINTER_BYTES, 0);
  if (total > ARG_MAX) {
    return `The command's arguments and environment together are ${count(total)} bytes; Linux starts a command with at most ${count(ARG_MAX)} (a quarter of the 8 MiB stack limit), so the task's command cannot start. ${ADVICE}`;
  }
  return undefined;
}
