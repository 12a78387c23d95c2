// The setup scripts behind `make docker`, `make images` and `make registry`: safe to re-run,
// fast and quiet when everything is already up, and clear when they cannot do their job.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dockerCli, TASKENV_FAIL, TASKENV_PASS, TEST_IMAGE_INPUTS_LABEL } from '../support/docker.ts';
import { AUTH_REGISTRY, AUTH_REGISTRY_CREDENTIALS, manifestDigest, OPEN_REGISTRY } from '../support/registry.ts';

const root = path.resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;

function script(name: string, options: { env?: NodeJS.ProcessEnv; uid?: number } = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(path.join(root, 'scripts', name), {
    cwd: root, encoding: 'utf8', timeout: 300_000,
    env: { ...process.env, ...options.env },
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {}),
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const imageId = (name: string): string => dockerCli(['image', 'inspect', '-f', '{{.Id}}', name]);

test('setup-docker.sh returns at once, quietly, when the engine answers', () => {
  const result = script('setup-docker.sh');
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '');
});

test('setup-docker.sh says what to install when it is not root and no engine answers', { skip: !isRoot && 'needs root to drop to another user' }, () => {
  const result = script('setup-docker.sh', { uid: 65534, env: { DOCKER_SOCKET: '/tmp/no-docker-here.sock', DOCKER_START_TIMEOUT: '1' } });
  assert.equal(result.status, 1);
  assert.equal(result.stderr.trim().split('\n').length, 1);
  assert.match(result.stderr, /no Docker engine answers at \/tmp\/no-docker-here.sock; install and start it as root: .*docker\.io/);
});

test('build-test-images.sh does not rebuild unchanged images', () => {
  const before = [imageId(TASKENV_PASS), imageId(TASKENV_FAIL)];
  const result = script('build-test-images.sh');
  assert.equal(result.status, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /built/);
  assert.deepEqual([imageId(TASKENV_PASS), imageId(TASKENV_FAIL)], before);
  assert.match(dockerCli(['image', 'inspect', '-f', `{{index .Config.Labels "${TEST_IMAGE_INPUTS_LABEL}"}}`, TASKENV_PASS]), /^[0-9a-f]{64}$/);
});

test('setup-registry.sh keeps running registries and pushes nothing when they hold the images', { skip: !isRoot && 'state dir differs for non-root users' }, () => {
  const pidFile = (name: string) => `/var/lib/docker-worker/registry/${name}/registry.pid`;
  const pids = [readFileSync(pidFile('open'), 'utf8'), readFileSync(pidFile('auth'), 'utf8')];
  const result = script('setup-registry.sh');
  assert.equal(result.status, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /starting|pushed/);
  assert.deepEqual([readFileSync(pidFile('open'), 'utf8'), readFileSync(pidFile('auth'), 'utf8')], pids);
});

test('the registries serve the test images; the protected one only with its credentials', async () => {
  const repoDigests = dockerCli(['image', 'inspect', '-f', '{{range .RepoDigests}}{{println .}}{{end}}', TASKENV_PASS]).split('\n');
  const open = await manifestDigest(OPEN_REGISTRY, 'taskenv_pass', 'latest');
  assert.ok(repoDigests.includes(`${OPEN_REGISTRY}/taskenv_pass@${open}`), repoDigests.join('\n'));
  const auth = await manifestDigest(AUTH_REGISTRY, 'taskenv_pass', 'latest', AUTH_REGISTRY_CREDENTIALS);
  assert.ok(repoDigests.includes(`${AUTH_REGISTRY}/taskenv_pass@${auth}`), repoDigests.join('\n'));
  await assert.rejects(manifestDigest(AUTH_REGISTRY, 'taskenv_pass', 'latest'), /HTTP 401/);
  await assert.rejects(manifestDigest(AUTH_REGISTRY, 'taskenv_pass', 'latest', { ...AUTH_REGISTRY_CREDENTIALS, password: 'wrong' }), /HTTP 401/);
});
