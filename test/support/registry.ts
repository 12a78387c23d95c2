// The local test registries started by scripts/setup-registry.sh (`make registry`), their
// credentials, and helpers to push images and run a throwaway registry a test may stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dockerCli } from './docker.ts';

/** Open registry: anyone may pull and push. */
export const OPEN_REGISTRY = '127.0.0.1:5480';
/** Registry behind htpasswd basic auth (no TLS; the daemon treats 127.0.0.0/8 as insecure). */
export const AUTH_REGISTRY = '127.0.0.1:5481';
export const AUTH_REGISTRY_CREDENTIALS = { username: 'docker-worker-test', password: 'docker-worker-test-password' };

/** Test images as pushed by setup-registry.sh. */
export const OPEN_TASKENV_PASS = `${OPEN_REGISTRY}/taskenv_pass:latest`;
export const OPEN_TASKENV_FAIL = `${OPEN_REGISTRY}/taskenv_fail:latest`;
export const AUTH_TASKENV_PASS = `${AUTH_REGISTRY}/taskenv_pass:latest`;
export const AUTH_TASKENV_FAIL = `${AUTH_REGISTRY}/taskenv_fail:latest`;

export interface Credentials { username: string; password: string }

const manifestTypes = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/** The digest a registry serves for repository:tag (HEAD of the manifest). */
export async function manifestDigest(registry: string, repository: string, tag: string, credentials?: Credentials): Promise<string> {
  const headers: Record<string, string> = { accept: manifestTypes };
  if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  const res = await fetch(`http://${registry}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers });
  const digest = res.headers.get('docker-content-digest');
  if (!res.ok || !digest) throw new Error(`${registry}/${repository}:${tag}: HTTP ${res.status}, no manifest digest`);
  return digest;
}

/**
 * Tags a local image as `target` (registry/repository:tag) and pushes it, logging in with a
 * throwaway client config when credentials are given; the local `target` tag is removed
 * afterwards. Returns the manifest digest the registry now serves.
 */
export async function pushImage(source: string, target: string, credentials?: Credentials): Promise<string> {
  const configDir = mkdtempSync(path.join(tmpdir(), 'docker-config-'));
  const env = { DOCKER_CONFIG: configDir };
  const registry = target.slice(0, target.indexOf('/'));
  try {
    if (credentials) dockerCli(['login', '-u', credentials.username, '--password-stdin', registry], { input: credentials.password, env });
    dockerCli(['tag', source, target]);
    dockerCli(['push', target], { env });
  } finally {
    rmSync(configDir, { recursive: true, force: true });
    try { dockerCli(['rmi', target]); } catch { /* already gone */ }
  }
  const rest = target.slice(registry.length + 1);
  const colon = rest.lastIndexOf(':');
  return manifestDigest(registry, rest.slice(0, colon), rest.slice(colon + 1), credentials);
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface ThrowawayRegistry {
  host: string;
  stop(): Promise<void>;
}

/** Starts Debian's docker-registry (open, plain HTTP) on a free loopback port, for one test. */
export async function startThrowawayRegistry(): Promise<ThrowawayRegistry> {
  const dir = mkdtempSync(path.join(tmpdir(), 'test-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = path.join(dir, 'config.yml');
  writeFileSync(config, [
    'version: 0.1',
    'log: {level: error, accesslog: {disabled: true}}',
    `storage: {filesystem: {rootdirectory: ${dir}/data}, delete: {enabled: true}}`,
    `http: {addr: "${host}", secret: throwaway}`,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.ok) return { host, stop };
    } catch { /* not up yet */ }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`docker-registry did not start on ${host} (is it installed? make registry)`);
}

/** Deletes a manifest from a registry (test hygiene; the registries allow deletes). */
export async function deleteManifest(registry: string, repository: string, digest: string, credentials?: Credentials): Promise<void> {
  const headers: Record<string, string> = {};
  if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  await fetch(`http://${registry}/v2/${repository}/manifests/${digest}`, { method: 'DELETE', headers }).catch(() => undefined);
}
