// What this copy of the worker is: its version (package.json) and the commit it was built
// from. A release package (`make package`) carries build-info.json, written when it was built;
// in a git checkout the commit is asked of git (with "-dirty" when the tree has changes).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface BuildInfo {
  version: string;
  commit: string;
  /** The bundled Node.js version, in a release package. */
  node?: string;
}

const root = fileURLToPath(new URL('../../', import.meta.url));

export function buildInfo(): BuildInfo {
  const version: string = JSON.parse(readFileSync(new URL('package.json', `file://${root}`), 'utf8')).version;
  try {
    const recorded = JSON.parse(readFileSync(new URL('build-info.json', `file://${root}`), 'utf8')) as Partial<BuildInfo>;
    return { version: recorded.version ?? version, commit: recorded.commit ?? 'unknown', ...(recorded.node ? { node: recorded.node } : {}) };
  } catch { /* not a release package */ }
  return { version, commit: gitCommit() };
}

function gitCommit(): string {
  const git = (args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  try {
    const commit = git(['rev-parse', 'HEAD']);
    return git(['status', '--porcelain', '--untracked-files=no']) ? `${commit}-dirty` : commit;
  } catch {
    return 'unknown';
  }
}

/** `worker --version`: "docker-worker 0.1.0 (commit 1234abcd…)". */
export function versionLine(info: BuildInfo = buildInfo()): string {
  return `docker-worker ${info.version} (commit ${info.commit}${info.node ? `, node ${info.node}` : ''})`;
}
