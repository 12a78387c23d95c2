// Parses a registry image name the way Docker does ("ubuntu", "ubuntu:22.04",
// "127.0.0.1:5480/taskenv_pass:latest", "repo@sha256:..."): registry host, repository path,
// tag or digest, with Docker Hub defaults (docker.io, library/, latest).

export const DOCKER_HUB = 'docker.io';

export interface ImageName {
  /** The name as given. */
  original: string;
  /** Registry host[:port]; "docker.io" for Docker Hub. */
  registry: string;
  /** Repository path inside the registry ("library/ubuntu", "taskenv_pass"). */
  repository: string;
  /** The tag; undefined when the name is pinned by digest. */
  tag: string | undefined;
  /** "algorithm:hex" when pinned by digest. */
  digest: string | undefined;
  /** Repository as Docker names it locally: "ubuntu", "user/app", "127.0.0.1:5480/taskenv_pass". */
  localRepository: string;
  /** Full reference to pull and inspect: localRepository plus ":tag" or "@digest". */
  reference: string;
}

export class ImageNameError extends Error {
  constructor(name: string, why: string) {
    super(`"${name}" is not a valid Docker image name: ${why}.`);
    this.name = 'ImageNameError';
  }
}

const domainPattern = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;
const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

export function parseImageName(name: string): ImageName {
  if (typeof name !== 'string' || name.trim() === '') throw new ImageNameError(String(name), 'it is empty');
  if (name !== name.trim() || /\s/.test(name)) throw new ImageNameError(name, 'it contains white space');

  let rest = name;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) throw new ImageNameError(name, `"${digest}" is not a digest like sha256:<64 hex digits>`);
  }

  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!tagPattern.test(tag)) throw new ImageNameError(name, `"${tag}" is not a valid tag (letters, digits, _ . -, at most 128)`);
  }

  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase()) {
      registry = first;
      repository = rest.slice(slash + 1);
      if (!domainPattern.test(registry)) throw new ImageNameError(name, `"${registry}" is not a valid registry host`);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (repository === '') throw new ImageNameError(name, 'the repository name is missing');
  for (const component of repository.split('/')) {
    if (!pathComponentPattern.test(component)) {
      throw new ImageNameError(name, `"${component}" must be lowercase letters and digits, separated by . _ __ or -`);
    }
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (`${registry}/${repository}`.length > 255) throw new ImageNameError(name, 'it is longer than 255 characters');

  if (digest === undefined && tag === undefined) tag = 'latest';
  if (digest !== undefined) tag = undefined; // Docker ignores a tag next to a digest

  const localRepository = registry === DOCKER_HUB ? repository.replace(/^library\//, '') : `${registry}/${repository}`;
  const reference = digest !== undefined ? `${localRepository}@${digest}` : `${localRepository}:${tag}`;
  return { original: name, registry, repository, tag, digest, localRepository, reference };
}
