// Helpers for the cache tests: a captured worker log, a container run through the engine
// with binds, and tiny images of their own (distinct ids) made with `docker import`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import Transport from 'winston-transport';
import type { Engine } from '../../lib/docker/engine.ts';
import type { WorkerLog } from '../../lib/log/worker-log.ts';
import { TASKENV_PASS, readAll } from '../support/docker.ts';

export interface LogEvent { message: string; level: string; [k: string]: unknown }

class CaptureTransport extends Transport {
  readonly events: LogEvent[] = [];
  override log(info: LogEvent, next: () => void): void {
    this.events.push(info);
    next();
  }
}

export function capturedLog(): { log: WorkerLog; events: LogEvent[] } {
  const capture = new CaptureTransport();
  return { log: winston.createLogger({ level: 'debug', transports: [capture] }), events: capture.events };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
}

/** Runs `script` with /bin/sh in a container of ours with `binds`; returns exit code and output. */
export async function runWithBinds(engine: Engine, workerId: string, binds: string[], script: string): Promise<{ exitCode: number; output: string }> {
  const id = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['/bin/sh', '-c', script], HostConfig: { Binds: binds } }, { workerId, taskId: 'cache-test' });
  try {
    await engine.startContainer(id);
    const { exitCode } = await engine.waitContainer(id);
    const output = await readAll(await engine.logs(id, { tty: false }));
    return { exitCode, output };
  } finally {
    await engine.removeContainer(id);
  }
}

/** An image of its own (a file with random content, so a distinct id) imported as `name`; returns its id. */
export function importTinyImage(name: string): string {
  const dir = tempDir('tiny-image');
  try {
    writeFileSync(path.join(dir, 'content'), randomBytes(16).toString('hex'));
    const tar = execFileSync('tar', ['-C', dir, '-c', 'content']);
    execFileSync('docker', ['import', '-', name], { input: tar, stdio: ['pipe', 'pipe', 'pipe'] });
    return execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', name], { encoding: 'utf8' }).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function dockerRootDir(): string {
  return execFileSync('docker', ['info', '--format', '{{.DockerRootDir}}'], { encoding: 'utf8' }).trim();
}

/** Waits until `check` holds (polling), or fails after `timeoutMs` with `what`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
