import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageNameError, parseImageName } from '../../lib/docker/image-name.ts';

const digest = `sha256:${'a'.repeat(64)}`;

test('a bare Docker Hub name gets docker.io, library/ and latest', () => {
  const n = parseImageName('ubuntu');
  assert.deepEqual([n.registry, n.repository, n.tag, n.digest, n.reference], ['docker.io', 'library/ubuntu', 'latest', undefined, 'ubuntu:latest']);
});

test('Docker Hub user images and explicit docker.io names are the same image', () => {
  assert.equal(parseImageName('taskcluster/test-ubuntu:22.04').reference, 'taskcluster/test-ubuntu:22.04');
  assert.equal(parseImageName('docker.io/library/ubuntu:22.04').reference, 'ubuntu:22.04');
  assert.equal(parseImageName('index.docker.io/ubuntu').reference, 'ubuntu:latest');
});

test('a registry host with a port is the registry, not a tag', () => {
  const n = parseImageName('127.0.0.1:5480/taskenv_pass');
  assert.deepEqual([n.registry, n.repository, n.tag, n.reference], ['127.0.0.1:5480', 'taskenv_pass', 'latest', '127.0.0.1:5480/taskenv_pass:latest']);
  const l = parseImageName('localhost/team/app:v1');
  assert.deepEqual([l.registry, l.repository, l.tag], ['localhost', 'team/app', 'v1']);
});

test('a digest pins the image; a tag next to it is ignored like Docker does', () => {
  const n = parseImageName(`127.0.0.1:5480/taskenv_pass@${digest}`);
  assert.equal(n.digest, digest);
  assert.equal(n.tag, undefined);
  assert.equal(n.reference, `127.0.0.1:5480/taskenv_pass@${digest}`);
  assert.equal(parseImageName(`ubuntu:22.04@${digest}`).reference, `ubuntu@${digest}`);
});

test('bad names are refused with a sentence naming the image', () => {
  for (const bad of ['', 'Ubuntu', 'ubuntu:', 'ubuntu@sha256:abc', 'a b', 'host:5000/', 'ubuntu:bad/tag', '-x']) {
    assert.throws(() => parseImageName(bad), (err: unknown) => {
      assert.ok(err instanceof ImageNameError, `${bad}: ${String(err)}`);
      assert.match(err.message, /is not a valid Docker image name/);
      return true;
    }, bad);
  }
});
