// How an interactive task's container stays open after its command ended. The worker makes a
// directory, bind-mounted read-only at HOLD_DIR, holding a shell script that becomes the
// container's entrypoint (the task's command is its arguments) and a FIFO. The script runs the
// command, keeps its exit code, then blocks reading the FIFO until the worker writes a line to
// it, and exits with the command's code: the task's result is its command's.
//
// The worker holds the FIFO open (read-write, never blocking) from the start, so a release
// written while the command still runs waits in the pipe; taking it back (a session opened
// before the command ended) reads it out again. Only sh builtins are used in the container
// (`read`, `exec`, `exit`): any image with a /bin/sh works, busybox included.
import { execFile } from 'node:child_process';
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

export const HOLD_DIR = '/.taskcluster-interactive';

export const HOLD_SCRIPT = `#!/bin/sh
# docker-worker (interactive): run the task's command, then keep the container open for shell
# sessions until the worker releases it; exit with the command's exit code.
"$@"
code=$?
exec 3<> ${HOLD_DIR}/release
read -r _ <&3
exit $code
`;

export class ContainerHold {
  readonly dir: string;
  #fifo: number | undefined;
  #released = false;

  private constructor(dir: string, fifo: number) {
    this.dir = dir;
    this.#fifo = fifo;
  }

  /** Makes the directory (under `parent`, named interactive-*) with the script and the FIFO. */
  static async create(parent: string): Promise<ContainerHold> {
    const dir = await mkdtemp(path.join(parent, 'interactive-'));
    try {
      await chmod(dir, 0o755);
      await writeFile(path.join(dir, 'hold.sh'), HOLD_SCRIPT, { mode: 0o644 });
      const fifo = path.join(dir, 'release');
      await promisify(execFile)('mkfifo', ['-m', '0666', fifo]);
      await chmod(fifo, 0o666); // whatever the umask; the container's user may be anyone
      return new ContainerHold(dir, openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The container additions: the read-only bind and the entrypoint wrapper. */
  get bind(): string { return `${this.dir}:${HOLD_DIR}:ro`; }
  get entrypoint(): string[] { return ['/bin/sh', `${HOLD_DIR}/hold.sh`]; }
  get released(): boolean { return this.#released; }

  /** Lets the container exit once its command ended (at once, if it already did). */
  release(): void {
    if (this.#released || this.#fifo === undefined) return;
    writeSync(this.#fifo, 'release\n');
    this.#released = true;
  }

  /** Takes a release back, if the script has not read it yet. */
  hold(): void {
    if (!this.#released || this.#fifo === undefined) return;
    try {
      readSync(this.#fifo, Buffer.alloc(64), 0, 64, null);
      this.#released = false;
    } catch {
      // EAGAIN: the script read it already; the container is on its way out
    }
  }

  /** Closes the FIFO and removes the directory (after the container is gone). */
  async remove(): Promise<void> {
    if (this.#fifo !== undefined) { try { closeSync(this.#fifo); } catch { /* closed */ } this.#fifo = undefined; }
    await rm(this.dir, { recursive: true, force: true });
  }
}
