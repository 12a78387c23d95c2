// `bin/worker serve` as a child process, for the tests of the serve command.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface ServeProcess {
  child: ChildProcess;
  /** The first line the command printed on stdout. */
  rootUrl: string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `bin/worker serve ARGS` and waits for its first stdout line (or its exit). */
export function runServe(args: string[], onFirstLine?: (line: string) => void): Promise<ServeProcess> {
  const child = spawn(path.join(repoRoot, 'bin/worker'), ['serve', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    const onData = (c: string) => {
      stdout += c;
      const end = stdout.indexOf('\n');
      if (end < 0) return;
      child.stdout!.off('data', onData);
      const line = stdout.slice(0, end);
      onFirstLine?.(line);
      resolve({
        child, rootUrl: line, stderr: () => stderr, exited,
        async stop(signal: NodeJS.Signals = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    void exited.then(({ code, signal }) => reject(Object.assign(
      new Error(`worker serve exited (${code ?? signal}) before printing its rootUrl:\n${stderr}`), { code, stderr: () => stderr })));
  });
}
