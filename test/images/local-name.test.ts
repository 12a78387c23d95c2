// The local names of artifact images: deterministic, different for different artifacts or
// contents, and always a valid docker reference (lowercase, no stray separators).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityKey, localImageName, localRepository } from '../../lib/images/local-name.ts';
import { parseImageName } from '../../lib/docker/image-name.ts';

const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;

test('the name is task-image/<taskId>/<path hash>:<digest prefix>', () => {
  const { name, repository, tag } = localImageName({ taskId: 'fN1CC2ZUR0yFJuNAQJvJmg', path: 'public/image.tar.zst' }, digest);
  assert.match(repository, /^task-image\/fn1cc2zur0yfjunaqjvjmg\/[0-9a-f]{16}$/);
  assert.equal(tag, '0123456789ab');
  assert.equal(name, `${repository}:${tag}`);
});

test('the same artifact always gets the same name; another path, task or content another', () => {
  const a = localImageName({ taskId: 'Abc-_xyz', path: 'public/a.tar' }, digest).name;
  assert.equal(localImageName({ taskId: 'Abc-_xyz', path: 'public/a.tar' }, digest).name, a);
  assert.notEqual(localImageName({ taskId: 'Abc-_xyz', path: 'public/b.tar' }, digest).name, a);
  assert.notEqual(localImageName({ taskId: 'abc-_xyz', path: 'public/a.tar' }, digest).name, a, 'taskIds differing in case only');
  assert.notEqual(localImageName({ taskId: 'Abc-_xyz', path: 'public/a.tar' }, `sha256:${'f'.repeat(64)}`).name, a);
});

test('taskIds with dashes and underscores anywhere still give valid references', () => {
  for (const taskId of ['-leading', 'trailing_', 'a__b--c_-d', '____', 'UPPER']) {
    const { name } = localImageName({ taskId, path: 'private/x' }, digest);
    assert.doesNotThrow(() => parseImageName(name), name);
    assert.match(name, /^task-image\/[a-z0-9]+(-[a-z0-9]+)*\/[0-9a-f]{16}:[0-9a-f]{12}$/);
  }
});

test('only sha256 digests are accepted', () => {
  assert.throws(() => localImageName({ taskId: 't', path: 'p' }, 'md5:abc'), /not a sha256 digest/);
  assert.equal(localRepository({ taskId: 't', path: 'p' }), localImageName({ taskId: 't', path: 'p' }, digest).repository);
});

test('the memory key is taskId/runId/path', () => {
  assert.equal(identityKey({ taskId: 'T', runId: 2, path: 'public/i.tar' }), 'T/2/public/i.tar');
});
