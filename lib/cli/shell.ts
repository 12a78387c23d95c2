// `worker shell TASK_ID [--run N] [-- COMMAND...]`: a shell in an interactive task's container
// from a terminal. The socket is found through the run's private artifact
// private/docker-worker/shell.html, read with the caller's credentials (TASKCLUSTER_* or the
// config, or the embedded deployment's root client); stdin, stdout and stderr are the
// terminal's, in raw mode with its size (and size changes) when stdin is a terminal. Exits with
// the shell's exit code.
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { loadConfig } from '../config/load.ts';
import { MSG, frame, resizeFrame } from '../interactive/exec-protocol.ts';
import { sessionUrl, socketUrlFromPageUrl } from '../interactive/shell-location.ts';
import { SHELL_ARTIFACT } from '../features/interactive.ts';
import { queueClient } from '../queue/taskcluster.ts';
import { deploymentFor } from './deployment.ts';

export const usage = 'worker shell TASK_ID [--run N] [--root-url URL] [--config FILE] [-- COMMAND ARGS...]';

const usageError = (message: string) => Object.assign(new Error(`${message}\nusage: ${usage}`), { name: 'ConfigError' });

/** The page the run's shell artifact redirects to. */
export async function findShellPage(queue: ReturnType<typeof queueClient> & Record<string, any>, taskId: string, runId: number): Promise<string> {
  const url = queue.buildSignedUrl(queue.getArtifact, taskId, runId, SHELL_ARTIFACT) as string;
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  if (res.status >= 300 && res.status < 400 && location) return new URL(location, url).toString();
  const body = (await res.text()).slice(0, 300);
  if (res.status === 404) throw Object.assign(new Error(`run ${runId} of task ${taskId} has no ${SHELL_ARTIFACT}: the task must have payload.features.interactive and be running (or just finished)`), { name: 'ConfigError' });
  if (res.status === 403 || res.status === 401) throw Object.assign(new Error(`your credentials may not read ${SHELL_ARTIFACT} of task ${taskId} (they need queue:get-artifact:${SHELL_ARTIFACT}): ${body}`), { name: 'ConfigError' });
  throw new Error(`${SHELL_ARTIFACT} of task ${taskId} answered ${res.status}: ${body}`);
}

export interface Terminal {
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
  errors: NodeJS.WriteStream;
}

/** Runs one session on `socketUrl` with the terminal's streams; resolves with the exit code. */
export function runShellSession(socketUrl: string, command: string[], term: Terminal): Promise<number> {
  const tty = term.input.isTTY === true && term.output.isTTY === true;
  const ws = new WebSocket(sessionUrl(socketUrl, command, tty));
  return new Promise<number>((resolve) => {
    let exitCode: number | undefined;
    let failure: string | undefined;
    const send = (data: Buffer) => { if (ws.readyState === WebSocket.OPEN) ws.send(data); };
    const sendSize = () => send(resizeFrame(term.output.rows ?? 24, term.output.columns ?? 80));
    const onInput = (chunk: Buffer) => send(frame(MSG.stdin, chunk));
    const onEnd = () => send(frame(MSG.end));
    const restore = () => {
      term.input.off('data', onInput);
      term.input.off('end', onEnd);
      term.output.off('resize', sendSize);
      if (tty) term.input.setRawMode(false);
      term.input.pause();
    };
    ws.on('open', () => {
      if (tty) { term.input.setRawMode(true); sendSize(); term.output.on('resize', sendSize); }
      term.input.on('data', onInput);
      term.input.on('end', onEnd);
      term.input.resume();
    });
    ws.on('message', (data: Buffer) => {
      const body = data.subarray(1);
      switch (data[0]) {
        case MSG.stdout:
          if (!term.output.write(body)) { send(frame(MSG.pause)); term.output.once('drain', () => send(frame(MSG.resume))); }
          break;
        case MSG.stderr: term.errors.write(body); break;
        case MSG.pause: term.input.pause(); break;
        case MSG.resume: term.input.resume(); break;
        case MSG.stopped: exitCode = body[0] ?? 1; break;
        case MSG.shutdown: failure = 'the worker closed the shell (the task ended)'; break;
        case MSG.error: failure = body.toString('utf8'); break;
        default: break;
      }
    });
    ws.on('error', (err) => { failure ??= `could not reach the shell at ${new URL(socketUrl).host}: ${err.message}`; });
    ws.on('close', () => {
      restore();
      if (exitCode === undefined && failure) term.errors.write(`worker shell: ${failure}\n`);
      resolve(exitCode ?? 1);
    });
  });
}

export async function shell(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { run: { type: 'string' }, 'root-url': { type: 'string' }, config: { type: 'string' } },
  });
  const [taskId, ...command] = positionals;
  if (!taskId) throw usageError('expected a taskId');
  const config = loadConfig({ file: values.config, overrides: { rootUrl: values['root-url'] } });
  const queue = queueClient(deploymentFor(config)) as ReturnType<typeof queueClient> & Record<string, any>;
  let runId: number;
  if (values.run !== undefined) {
    runId = Number(values.run);
    if (!Number.isInteger(runId) || runId < 0) throw usageError(`--run must be a run number (0, 1, ...), not ${values.run}`);
  } else {
    const { status } = await queue.status(taskId) as { status: { runs: Array<{ runId: number }> } };
    const last = status.runs.at(-1);
    if (!last) throw Object.assign(new Error(`task ${taskId} has not run yet: wait until it is running`), { name: 'ConfigError' });
    runId = last.runId;
  }
  const page = await findShellPage(queue, taskId, runId);
  return runShellSession(socketUrlFromPageUrl(page), command.length ? command : ['sh'], { input: process.stdin, output: process.stdout, errors: process.stderr });
}
