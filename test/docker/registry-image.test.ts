// Registry image pulls against the real engine and real local registries (make registry).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureRegistryImage, ImageError, type EnsureRegistryImageOptions } from '../../lib/docker/registry-image.ts';
import { TASKENV_FAIL, TASKENV_PASS, testEngine, testWorkerId } from '../support/docker.ts';
import {
  AUTH_REGISTRY, AUTH_REGISTRY_CREDENTIALS, OPEN_REGISTRY, deleteManifest, freePort, pushImage, startThrowawayRegistry,
} from '../support/registry.ts';

const engine = testEngine();
const run = testWorkerId('pull');
const localNames: string[] = [];
const remoteManifests: Array<{ registry: string; repository: string; digest: string; auth?: boolean }> = [];

after(async () => {
  for (const name of localNames) await engine.removeImage(name);
  for (const image of await engine.listImages()) {
    for (const ref of image.repoDigests.filter((d) => d.includes(`-${run}@`))) await engine.removeImage(ref);
  }
  for (const m of remoteManifests) await deleteManifest(m.registry, m.repository, m.digest, m.auth ? AUTH_REGISTRY_CREDENTIALS : undefined);
  assert.equal(await engine.imageExists(TASKENV_PASS), true, 'the test images survive');
});

/** Pushes a local test image as registry/repository:tag; returns the full name and digest. */
async function publish(source: string, registry: string, repository: string, tag: string, auth = false): Promise<{ name: string; digest: string }> {
  const name = `${registry}/${repository}:${tag}`;
  const digest = await pushImage(source, name, auth ? AUTH_REGISTRY_CREDENTIALS : undefined);
  remoteManifests.push({ registry, repository, digest, auth });
  return { name, digest };
}

async function ensure(name: string, options: EnsureRegistryImageOptions = {}): Promise<{ lines: string[]; result: Awaited<ReturnType<typeof ensureRegistryImage>> }> {
  const lines: string[] = [];
  localNames.push(name);
  const result = await ensureRegistryImage(engine, name, { retries: 2, baseDelayMs: 10, ...options, onProgress: (l) => lines.push(l) });
  return { lines, result };
}

async function ensureFails(name: string, options: EnsureRegistryImageOptions = {}): Promise<{ lines: string[]; error: ImageError }> {
  const lines: string[] = [];
  try {
    await ensureRegistryImage(engine, name, { retries: 2, baseDelayMs: 10, ...options, onProgress: (l) => lines.push(l) });
  } catch (error) {
    assert.ok(error instanceof ImageError, String(error));
    return { lines, error };
  }
  assert.fail(`pulling ${name} should have failed`);
}

const attempts = (lines: string[]): number => lines.filter((l) => l.startsWith('Pulling image ')).length;

test('pulls a tag from the open registry and reports the digest it got', async () => {
  const { name, digest } = await publish(TASKENV_PASS, OPEN_REGISTRY, `docker-worker-test/open-${run}`, 'v1');
  assert.equal(await engine.imageExists(name), false);
  const { lines, result } = await ensure(name);
  assert.equal(result.source, 'registry');
  assert.equal(result.imageId, (await engine.inspectImage(TASKENV_PASS))!.Id);
  assert.equal(result.repoDigest, `${OPEN_REGISTRY}/docker-worker-test/open-${run}@${digest}`);
  assert.equal(lines[0], `Pulling image ${name}`);
  assert.ok(lines.includes(`Digest: ${digest}`), lines.join('\n'));
  assert.equal(await engine.imageExists(name), true);
});

test('the protected registry: good credentials pull; none or bad ones fail at once with a clear error', async () => {
  const { name } = await publish(TASKENV_PASS, AUTH_REGISTRY, `docker-worker-test/auth-${run}`, 'v1', true);

  const none = await ensureFails(name);
  assert.equal(none.error.kind, 'auth');
  assert.match(none.error.message, new RegExp(`^Could not pull image ${name}: the registry ${AUTH_REGISTRY} requires credentials`));
  assert.match(none.error.message, new RegExp(`scope docker-worker:image:${name}`));
  assert.equal(attempts(none.lines), 1, 'an auth failure is not retried');

  const bad = await ensureFails(name, { credentials: { username: AUTH_REGISTRY_CREDENTIALS.username, password: 'wrong' } });
  assert.equal(bad.error.kind, 'auth');
  assert.match(bad.error.message, /rejected the worker's credentials/);
  assert.equal(attempts(bad.lines), 1, 'an auth failure is not retried');
  assert.equal(await engine.imageExists(name), false);

  const good = await ensure(name, { credentials: AUTH_REGISTRY_CREDENTIALS });
  assert.equal(good.result.source, 'registry');
  assert.equal(await engine.imageExists(name), true);
});

test('a name pinned by digest is pulled once; the second time the registry is not contacted', async () => {
  const registry = await startThrowawayRegistry();
  let name: string;
  try {
    const pushed = await pushImage(TASKENV_PASS, `${registry.host}/pinned:v1`);
    name = `${registry.host}/pinned@${pushed}`;
    const first = await ensure(name);
    assert.equal(first.result.source, 'registry');
    assert.equal(first.result.repoDigest, name);
    assert.equal(attempts(first.lines), 1);
  } finally {
    await registry.stop();
  }
  const second = await ensure(name, { retries: 0 });
  assert.equal(second.result.source, 'local');
  assert.equal(attempts(second.lines), 0);
  assert.deepEqual(second.lines, [`Using image ${name}: pinned by digest and already present.`]);
});

test('a tag is checked again on every use and follows the registry', async () => {
  const repository = `docker-worker-test/moving-${run}`;
  const { name } = await publish(TASKENV_PASS, OPEN_REGISTRY, repository, 'current');
  const first = await ensure(name);
  assert.equal(first.result.imageId, (await engine.inspectImage(TASKENV_PASS))!.Id);
  await publish(TASKENV_FAIL, OPEN_REGISTRY, repository, 'current');
  await engine.tagImage(TASKENV_PASS, `${OPEN_REGISTRY}/${repository}`, 'current'); // the stale local copy
  const second = await ensure(name);
  assert.equal(second.result.source, 'registry');
  assert.equal(second.result.imageId, (await engine.inspectImage(TASKENV_FAIL))!.Id);
  assert.equal(attempts(second.lines), 1);
});

test('registry gone but a local copy exists: a warning line and the local image', async () => {
  const registry = await startThrowawayRegistry();
  const name = `${registry.host}/cached:v1`;
  let imageId: string;
  try {
    await pushImage(TASKENV_PASS, name);
    imageId = (await ensure(name)).result.imageId;
  } finally {
    await registry.stop();
  }
  const { lines, result } = await ensure(name, { retries: 5, baseDelayMs: 60_000 });
  assert.equal(result.source, 'local-fallback');
  assert.equal(result.imageId, imageId);
  assert.equal(attempts(lines), 1, 'no retries when a local copy can stand in');
  const warning = lines.find((l) => l.startsWith('Warning:'));
  assert.ok(warning, lines.join('\n'));
  assert.match(warning, new RegExp(`could not reach the registry ${registry.host}.*using the local copy of ${name}`));
});

test('unreachable registry and no local copy: retried with backoff, then one clear error', async () => {
  const name = `127.0.0.1:${await freePort()}/nothing-here:v1`;
  const { lines, error } = await ensureFails(name, { retries: 2, baseDelayMs: 10 });
  assert.equal(error.kind, 'transient');
  assert.equal(attempts(lines), 3);
  assert.deepEqual(lines.filter((l) => l.startsWith('Pulling image ')), [
    `Pulling image ${name}`, `Pulling image ${name} (attempt 2 of 3)`, `Pulling image ${name} (attempt 3 of 3)`,
  ]);
  assert.match(error.message, new RegExp(`^Could not pull image ${name} from 127\\.0\\.0\\.1:\\d+ after 3 attempts: .*connection refused`));
});

test('an unknown image or tag is one clear error, not retried', async () => {
  const name = `${OPEN_REGISTRY}/docker-worker-test/does-not-exist-${run}:v1`;
  const { lines, error } = await ensureFails(name);
  assert.equal(error.kind, 'not-found');
  assert.match(error.message, new RegExp(`^Image ${name} was not found in the registry ${OPEN_REGISTRY} \\(.*manifest unknown.*\\); check the image name and its tag or digest\\.$`));
  assert.equal(attempts(lines), 1);
});

test('an invalid image name is refused before anything is pulled', async () => {
  const { lines, error } = await ensureFails('Not A Name');
  assert.equal(error.kind, 'invalid-name');
  assert.match(error.message, /"Not A Name" is not a valid Docker image name/);
  assert.deepEqual(lines, []);
});
