// `worker --version`: the version and the commit. A release package records both in
// build-info.json (test/deploy/package.test.ts checks that); a checkout asks git.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildInfo, versionLine } from '../../lib/build/build-info.ts';

const root = path.resolve(import.meta.dirname, '../..');

test('the version line names the version, the commit and, in a package, the bundled Node.js', () => {
  assert.equal(versionLine({ version: '1.2.3', commit: 'abc' }), 'docker-worker 1.2.3 (commit abc)');
  assert.equal(versionLine({ version: '1.2.3', commit: 'abc', node: '24.21.0' }), 'docker-worker 1.2.3 (commit abc, node 24.21.0)');
});

test("in a git checkout the commit is the checkout's HEAD, -dirty with local changes", () => {
  const head = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
  const info = buildInfo();
  assert.equal(info.version, JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  assert.equal(info.commit, dirty ? `${head}-dirty` : head);
  const out = execFileSync(path.join(root, 'bin/worker'), ['--version'], { encoding: 'utf8' });
  assert.equal(out, `${versionLine(info)}\n`);
});
