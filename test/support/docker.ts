// Docker facts for tests: the test images (built by scripts/build-test-images.sh, `make images`),
// an Engine on the local daemon, and per-test owner ids so a test lists only what it created.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Engine } from '../../lib/docker/engine.ts';

/** busybox image: `taskhost-who a b` prints "a b" and exits 0; /bin/sh and busybox applets. */
export const TASKENV_PASS = 'taskenv_pass:latest';
/** Same base: `taskhost-who a b` prints "a b" on stderr and exits 1. */
export const TASKENV_FAIL = 'taskenv_fail:latest';
/** Label holding the hash of an image's build inputs. */
export const TEST_IMAGE_INPUTS_LABEL = 'org.taskcluster.docker-worker.test-image-inputs';

export const DOCKER_SOCKET = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';

export function testEngine(): Engine {
  return new Engine({ socketPath: DOCKER_SOCKET });
}

/** A fresh workerId (and name prefix) per test, so listings and cleanup see only its objects. */
export function testWorkerId(prefix = 'test'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Removes every container, network and volume labelled with `workerId`. */
export async function removeOwnedBy(engine: Engine, workerId: string): Promise<void> {
  for (const c of await engine.listOwnedContainers(workerId)) await engine.removeContainer(c.id);
  for (const n of await engine.listOwnedNetworks(workerId)) await engine.removeNetwork(n.id);
  for (const v of await engine.listOwnedVolumes(workerId)) await engine.removeVolume(v.name);
}

/** Runs the docker CLI and returns its stdout (trimmed); throws with stderr on failure. */
export function dockerCli(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync('docker', args, { input: options.input, env: { ...process.env, ...options.env }, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
}

/** `docker save` of an image as a stream (for image load tests); stderr is dropped. */
export function dockerSaveStream(image: string): Readable {
  const child = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'ignore'] });
  return child.stdout;
}

/** Reads a stream to the end as text. */
export async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
