// Stage 4: start the planned container, stream its output into the task log, and wait for it
// to stop — or kill it when maxRunTime passes or the run is interrupted.
import type { Readable } from 'node:stream';
import type { EventEmitter } from 'node:events';
import type { Engine } from '../docker/engine.ts';
import { AttachedOutput } from '../docker/attach-socket.ts';
import { EngineError, unreachableEngine } from '../docker/engine-error.ts';
import type { TaskLog } from '../log/task-log.ts';

export interface ContainerRunResult {
  exitCode: number;
  oomKilled: boolean;
  /** maxRunTime passed before the container exited, and the worker killed it. */
  timedOut: boolean;
  /**
   * The run was interrupted (cancel, shutdown, lost claim) before the container exited on its
   * own: the worker killed it, or never started it. False when the container had already
   * exited when the interruption came (its exit status is then the task's own).
   */
  interrupted: boolean;
  /** Set when the container could not be started at all (e.g. the command does not exist). */
  startError?: string;
  /**
   * Set (to the task log line) when the engine stopped the container, or went away, before it
   * exited on its own: the exit status is not the task's.
   */
  engineStopped?: string;
}

export interface ContainerRunOptions {
  maxRunTimeSeconds: number;
  /** Aborted when the run is interrupted (cancel, shutdown, lost claim): the container is killed. */
  signal: AbortSignal;
  /** Called the moment the container's exit is known (before the remaining output drains). */
  onExited?(interrupted: boolean): void;
  /** Called once the container started (before its output is followed). */
  onStarted?(): void;
  /** Whether the container was created with a TTY (raw output) or not (framed stdout and stderr); default true. */
  tty?: boolean;
  /** How long the engine has to confirm the exit of a container the worker killed (KILL_CONFIRM_MS). */
  killConfirmMs?: number;
}

/**
 * How long the engine has to confirm that a container the worker killed has stopped. A hung
 * engine (its socket takes connections, nothing answers) would otherwise hold the run, and a
 * worker shutting down, for ever; past this the worker stops waiting for it.
 */
export const KILL_CONFIRM_MS = 30_000;

/** The task log line when the engine did not confirm a kill in time. */
export function killUnconfirmedLine(ms: number): string {
  return `The Docker engine did not confirm within ${ms / 1000} seconds that the container stopped after the worker killed it `
    + '(the engine is hung): the worker stops waiting for it, and removes the container once the engine answers again.';
}

/** The container's output: attached (straight into the task log), or the followed log piped into it. */
type ContainerOutput = AttachedOutput | Readable;

const OUTPUT_STALL_MS = 10_000;

/** The longest delay setTimeout keeps; anything longer fires after 1 ms (Node clamps it). */
export const MAX_TIMER_MS = 2_147_483_647;

export interface LongTimeout { clear(): void }

/**
 * setTimeout for any delay: delays beyond MAX_TIMER_MS (about 24.8 days) are chained from
 * shorter timers instead of firing at once. `maxChunkMs` exists for tests.
 */
export function longTimeout(ms: number, fire: () => void, maxChunkMs = MAX_TIMER_MS): LongTimeout {
  let remaining = Math.max(0, ms);
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    const chunk = Math.min(remaining, maxChunkMs);
    remaining -= chunk;
    timer = setTimeout(() => { if (remaining > 0) schedule(); else { timer = undefined; fire(); } }, chunk);
  };
  schedule();
  return { clear: () => { if (timer) clearTimeout(timer); timer = undefined; } };
}

/** Output that says when bytes arrive ('data'), and when it ends ('end', 'close', 'error'). */
export type OutputEvents = Pick<EventEmitter, 'on' | 'once' | 'off'>;

/** Resolves true when `output` ends, false when it goes `stallMs` without a byte first. */
export function outputEnded(output: OutputEvents, stallMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout;
    const finish = (ended: boolean) => {
      clearTimeout(timer);
      output.off('data', arrived); output.off('end', onEnd); output.off('close', onEnd); output.off('error', onEnd);
      resolve(ended);
    };
    const onEnd = () => finish(true);
    const arrived = () => { clearTimeout(timer); timer = setTimeout(() => finish(false), stallMs); };
    output.on('data', arrived); output.once('end', onEnd); output.once('close', onEnd); output.once('error', onEnd);
    arrived();
  });
}

/** The task log line when the engine, not the task or the worker, ended the container. */
export function engineStoppedLine(detail?: string): string {
  return `The Docker engine stopped the task's container before the task ended${detail ? ` (${detail})` : ''}: the engine was stopped or restarted `
    + '(or someone ran `docker stop` on the container). This is not the task\'s doing: the run is resolved exception/worker-shutdown and the queue runs the task again.';
}

/** The task log line when the engine did not answer while the run needed it. */
export function engineUnreachableLine(detail: string): string {
  return `The Docker engine did not answer while the worker prepared or ran the task (${detail}). This is not the task's doing: `
    + 'the run is resolved exception/worker-shutdown and the queue runs the task again; the worker claims no task until the engine answers.';
}

/**
 * Docker 20.10 may end a followed log when the container exits before it has sent the last of
 * it (`docker logs -f` itself stops short now and then; a later `docker logs` has everything).
 * Once the container has stopped, the whole log is read again and whatever comes after the
 * `received` bytes already written is appended: the same entries in the same order, so the
 * same bytes. Best effort: the fallback's fallback.
 */
async function appendUnfollowedOutput(engine: Engine, containerId: string, tty: boolean, received: number, taskLog: TaskLog): Promise<void> {
  try {
    const whole = await engine.logs(containerId, { tty, follow: false });
    let skip = received;
    for await (const piece of whole as AsyncIterable<Buffer>) {
      if (skip >= piece.length) { skip -= piece.length; continue; }
      const rest = piece.subarray(skip);
      skip = 0;
      if (taskLog.destroyed || taskLog.writableEnded) return;
      if (!taskLog.write(rest)) await new Promise<void>((resolve) => { taskLog.once('drain', resolve); taskLog.once('close', resolve); });
    }
  } catch (err) {
    taskLog.warn(`The end of the container's output could not be read again: ${(err as Error).message}; the log may be incomplete.`);
  }
}

export const OOM_MESSAGE = 'The task ran out of memory: the kernel\'s OOM killer stopped a process in the container. Use less memory, or ask for a worker type with more.';

export async function runContainer(engine: Engine, containerId: string, taskLog: TaskLog, options: ContainerRunOptions): Promise<ContainerRunResult> {
  if (options.signal.aborted) return { exitCode: -1, oomKilled: false, timedOut: false, interrupted: true };
  const tty = options.tty ?? true;
  // Attached before the start, as `docker run` does: the first byte and the last are both
  // there (Docker 20.10 may end a followed log before the last lines written just before the
  // exit, often on a busy host). The bytes go from the engine's socket straight into the task
  // log (no stream in between). Should the attach fail, the followed log is the fallback.
  let output: ContainerOutput | undefined;
  let attachError: Error | undefined;
  // The attach passes backpressure on to the container: should the task log fail (a full
  // disk), its output is read on and dropped, or the task would block on its next write.
  const drain = () => {
    if (output instanceof AttachedOutput) output.drop();
    else if (output) { output.unpipe(taskLog); output.resume(); }
  };
  taskLog.once('error', drain);
  try {
    output = await engine.attachOutput(containerId, { tty, sink: taskLog, signal: options.signal });
    if (taskLog.failure || taskLog.destroyed) drain();
  } catch (err) {
    attachError = err as Error;
  }
  const release = () => {
    taskLog.off('error', drain);
    if (output instanceof AttachedOutput) output.destroy();
    else if (output) { output.unpipe(taskLog); output.destroy(); }
  };
  // Interrupted while attaching: the container is never started.
  if (options.signal.aborted) {
    release();
    return { exitCode: -1, oomKilled: false, timedOut: false, interrupted: true };
  }
  // An engine that does not answer the attach (hung, or gone) is not asked to start it.
  const attachAway = unreachableEngine(attachError);
  if (attachAway) {
    release();
    return { exitCode: -1, oomKilled: false, timedOut: false, interrupted: false, engineStopped: engineUnreachableLine(attachAway.message) };
  }
  const startedAt = new Date();
  try {
    await engine.startContainer(containerId);
  } catch (err) {
    release();
    const away = unreachableEngine(err);
    if (away && !options.signal.aborted) return { exitCode: -1, oomKilled: false, timedOut: false, interrupted: false, engineStopped: engineUnreachableLine(away.message) };
    return { exitCode: -1, oomKilled: false, timedOut: false, interrupted: options.signal.aborted, startError: (err as Error).message };
  }
  options.onStarted?.();
  // Bytes of the followed log written to the task log (the fallback when attaching failed).
  let followedBytes = 0;
  if (!output) {
    try {
      const followed = await engine.logs(containerId, { tty, follow: true });
      followed.on('data', (chunk: Buffer) => { followedBytes += chunk.length; });
      followed.pipe(taskLog, { end: false });
      output = followed;
    } catch (err) {
      taskLog.warn(`The container's output could not be read: ${(err as Error).message} (attaching failed first: ${attachError?.message})`);
    }
  }

  let timedOut = false;
  let exited = false;
  // Once the worker kills the container, the engine has killConfirmMs to say it stopped.
  let giveUp: (() => void) | undefined;
  const gaveUp = new Promise<'gave-up'>((resolve) => { giveUp = () => resolve('gave-up'); });
  let giveUpTimer: NodeJS.Timeout | undefined;
  const killConfirmMs = options.killConfirmMs ?? KILL_CONFIRM_MS;
  const kill = () => {
    void engine.killContainer(containerId).catch(() => undefined);
    giveUpTimer ??= setTimeout(() => giveUp?.(), killConfirmMs);
  };
  const timer = longTimeout(options.maxRunTimeSeconds * 1000, () => {
    if (exited) return;
    timedOut = true;
    taskLog.error(`Task timeout after ${options.maxRunTimeSeconds} seconds. Force killing container.`);
    kill();
  });
  const onAbort = () => { if (!exited) kill(); };
  if (options.signal.aborted) kill();
  else options.signal.addEventListener('abort', onAbort, { once: true });
  try {
    let status: { exitCode: number; oomKilled: boolean };
    try {
      const waiting = engine.waitContainer(containerId);
      const waited = await Promise.race([waiting, gaveUp]);
      if (waited === 'gave-up') {
        waiting.catch(() => undefined);
        exited = true;
        const interrupted = options.signal.aborted && !timedOut;
        options.onExited?.(interrupted);
        taskLog.error(killUnconfirmedLine(killConfirmMs));
        return { exitCode: -1, oomKilled: false, timedOut, interrupted };
      }
      status = waited;
    } catch (err) {
      // The engine went away under the wait (killed, or restarting): the container went with it.
      if (!(err instanceof EngineError && err.kind === 'unreachable')) throw err;
      exited = true;
      const interrupted = options.signal.aborted && !timedOut;
      options.onExited?.(interrupted);
      return { exitCode: -1, oomKilled: false, timedOut, interrupted, engineStopped: interrupted ? undefined : engineStoppedLine(err.message) };
    }
    // From here on the exit status is decided: neither maxRunTime nor an interruption may
    // change it while the remaining output drains.
    exited = true;
    timer.clear();
    options.signal.removeEventListener('abort', onAbort);
    const interrupted = options.signal.aborted && !timedOut;
    // Killed by a signal the worker did not send: the engine may have stopped it (shutting down).
    const engineStopped = !interrupted && !timedOut && !status.oomKilled && status.exitCode >= 128
      && await engine.stoppedThroughEngine(containerId, startedAt).catch(() => false) ? engineStoppedLine() : undefined;
    options.onExited?.(interrupted);
    if (output && !output.readableEnded && !output.destroyed) {
      // The engine may still be delivering output the container wrote before it stopped (a
      // fast writer is far ahead of the log reader): wait for all of it, giving up only when
      // nothing arrives for OUTPUT_STALL_MS (a stuck daemon).
      if (!await outputEnded(output, OUTPUT_STALL_MS)) {
        taskLog.warn(`The container's output stopped arriving ${OUTPUT_STALL_MS / 1000} seconds after it exited; the log may be incomplete.`);
      }
    }
    if (output && !(output instanceof AttachedOutput)) await appendUnfollowedOutput(engine, containerId, tty, followedBytes, taskLog);
    if (status.oomKilled) taskLog.error(OOM_MESSAGE);
    return { exitCode: status.exitCode, oomKilled: status.oomKilled, timedOut, interrupted, ...(engineStopped ? { engineStopped } : {}) };
  } finally {
    timer.clear();
    clearTimeout(giveUpTimer);
    options.signal.removeEventListener('abort', onAbort);
    release();
  }
}
