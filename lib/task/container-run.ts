// Stage 4: start the planned container, stream its output into the task log, and wait for it
// to stop — or kill it when maxRunTime passes or the run is interrupted.
import type { Readable } from 'node:stream';
import type { Engine } from '../docker/engine.ts';
import type { TaskLog } from '../log/task-log.ts';

export interface ContainerRunResult {
  exitCode: number;
  oomKilled: boolean;
  timedOut: boolean;
  /** Set when the container could not be started at all (e.g. the command does not exist). */
  startError?: string;
}

export interface ContainerRunOptions {
  maxRunTimeSeconds: number;
  /** Aborted when the run is interrupted (cancel, shutdown, lost claim): the container is killed. */
  signal: AbortSignal;
}

const OUTPUT_STALL_MS = 10_000;

/** Resolves true when `output` ends, false when it goes `stallMs` without a byte first. */
export function outputEnded(output: Readable, stallMs: number): Promise<boolean> {
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

export async function runContainer(engine: Engine, containerId: string, taskLog: TaskLog, options: ContainerRunOptions): Promise<ContainerRunResult> {
  try {
    await engine.startContainer(containerId);
  } catch (err) {
    return { exitCode: -1, oomKilled: false, timedOut: false, startError: (err as Error).message };
  }
  let output: Readable | undefined;
  try {
    output = await engine.logs(containerId, { tty: true, follow: true });
    output.pipe(taskLog, { end: false });
  } catch (err) {
    taskLog.warn(`The container's output could not be read: ${(err as Error).message}`);
  }

  let timedOut = false;
  const kill = () => { void engine.killContainer(containerId).catch(() => undefined); };
  const timer = setTimeout(() => {
    timedOut = true;
    taskLog.error(`Task timeout after ${options.maxRunTimeSeconds} seconds. Force killing container.`);
    kill();
  }, options.maxRunTimeSeconds * 1000);
  const onAbort = () => kill();
  if (options.signal.aborted) kill();
  else options.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const status = await engine.waitContainer(containerId);
    if (output && !output.readableEnded && !output.destroyed) {
      // The engine may still be delivering output the container wrote before it stopped (a
      // fast writer is far ahead of the log reader): wait for all of it, giving up only when
      // nothing arrives for OUTPUT_STALL_MS (a stuck daemon).
      if (!await outputEnded(output, OUTPUT_STALL_MS)) {
        taskLog.warn(`The container's output stopped arriving ${OUTPUT_STALL_MS / 1000} seconds after it exited; the log may be incomplete.`);
      }
    }
    return { exitCode: status.exitCode, oomKilled: status.oomKilled, timedOut };
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
    if (output) { output.unpipe(taskLog); output.destroy(); }
  }
}
