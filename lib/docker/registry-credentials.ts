// Which registry credentials a task's image pull may use. The worker's config maps a registry
// host, or host/path-prefix, to credentials; the longest matching prefix wins. A task may use
// them only with the scope docker-worker:image:<image name>.
import scopeLib from 'taskcluster-lib-scopes';
import { DOCKER_HUB, parseImageName } from './image-name.ts';

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Registry credentials by "host", "host:port" or "host/path/prefix". */
export type RegistryCredentialsConfig = Record<string, RegistryCredentials>;

const hubAliases = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

function normalizeKey(key: string): string {
  const trimmed = key.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const slash = trimmed.indexOf('/');
  const host = (slash < 0 ? trimmed : trimmed.slice(0, slash)).toLowerCase();
  const path = slash < 0 ? '' : trimmed.slice(slash);
  return (hubAliases.has(host) ? DOCKER_HUB : host) + path;
}

function matches(prefix: string, fullName: string): boolean {
  return fullName === prefix || fullName.startsWith(`${prefix}/`);
}

/**
 * The credentials configured for an image's registry, or undefined. "host/org" matches
 * "host/org/app" but not "host/organization"; a Docker Hub official image ("ubuntu") is
 * matched as both docker.io/library/ubuntu and docker.io/ubuntu.
 */
export function registryCredentialsFor(imageName: string, config: RegistryCredentialsConfig): (RegistryCredentials & { registry: string }) | undefined {
  const image = parseImageName(imageName);
  const candidates = [`${image.registry}/${image.repository}`];
  if (image.registry === DOCKER_HUB && image.repository.startsWith('library/')) candidates.push(`${DOCKER_HUB}/${image.repository.slice('library/'.length)}`);
  let best: { length: number; credentials: RegistryCredentials } | undefined;
  for (const [key, credentials] of Object.entries(config)) {
    const prefix = normalizeKey(key);
    if (!prefix || !candidates.some((name) => matches(prefix, name))) continue;
    if (!best || prefix.length > best.length) best = { length: prefix.length, credentials };
  }
  if (!best) return undefined;
  return { username: best.credentials.username, password: best.credentials.password, registry: image.registry };
}

/** The scope a task needs to pull `imageName` with the worker's registry credentials. */
export function imageScope(imageName: string): string {
  return `docker-worker:image:${imageName}`;
}

/** True when the task's scopes (globs like docker-worker:image:host/* included) allow it. */
export function mayUseCredentials(taskScopes: string[], imageName: string): boolean {
  return scopeLib.satisfiesExpression(taskScopes, imageScope(imageName));
}
