// The local name a loaded image artifact gets: deterministic from the artifact's identity and
// content, so the same artifact always loads under the same name and a different content never
// hides behind an old one:
//   task-image/<taskId, lowercased>/<hash of taskId and path>:<first 12 hex of the sha256>
// It is a valid docker reference (lowercase path components, a tag of [a-z0-9]).
import { createHash } from 'node:crypto';

/** The identity of an image artifact: which task (and run) and which artifact path. */
export interface ArtifactIdentity {
  taskId: string;
  runId: number;
  path: string;
}

/** `sha256:<64 hex>` → the 64 hex digits; throws on anything else. */
export function digestHex(digest: string): string {
  const m = /^(?:sha256:)?([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1]!;
}

function pathComponent(text: string): string {
  const c = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return c || 'task';
}

/** The repository part (without tag) for an artifact's images. */
export function localRepository(identity: Pick<ArtifactIdentity, 'taskId' | 'path'>): string {
  const pathHash = createHash('sha256').update(`${identity.taskId}\n${identity.path}`).digest('hex').slice(0, 16);
  return `task-image/${pathComponent(identity.taskId)}/${pathHash}`;
}

/** The full local name: repository and a tag made of the content digest's first 12 digits. */
export function localImageName(identity: Pick<ArtifactIdentity, 'taskId' | 'path'>, digest: string): { repository: string; tag: string; name: string } {
  const repository = localRepository(identity);
  const tag = digestHex(digest).slice(0, 12);
  return { repository, tag, name: `${repository}:${tag}` };
}

/** The key under which a loaded artifact image is remembered. */
export function identityKey(identity: ArtifactIdentity): string {
  return `${identity.taskId}/${identity.runId}/${identity.path}`;
}
