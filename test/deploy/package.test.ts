// The release package (`make package`): unpacked into an empty directory outside the
// repository and run with a PATH that holds no node, no npm and nothing of the repository's
// (node_modules and .tools out of reach), it prints its version and runs a real task on the
// embedded deployment it starts (`worker start`, then `worker submit --follow` from the package).
//
// DOCKER_WORKER_PACKAGE names a tarball already built (`make check-deploy` passes the one it
// made); otherwise the test builds it with scripts/package.sh.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeOwnedBy, testEngine, testWorkerId } from '../support/docker.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const version = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version as string;
const dir = mkdtempSync(path.join(os.tmpdir(), 'package-test-'));
const workerId = testWorkerId('pkg');
let tarball: string;
let unpacked: string;
let env: NodeJS.ProcessEnv;

/** Only what bin/worker's own shell lines need: no node anywhere on it. */
function minimalPath(): string {
  const bin = path.join(dir, 'path');
  mkdirSync(bin);
  for (const tool of ['bash', 'dirname', 'readlink']) {
    const found = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    symlinkSync(found, path.join(bin, tool));
  }
  return bin;
}

before(() => {
  tarball = process.env.DOCKER_WORKER_PACKAGE
    ?? execFileSync(path.join(repoRoot, 'scripts/package.sh'), { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  assert.match(path.basename(tarball), new RegExp(`^docker-worker-${version.replaceAll('.', '\\.')}-linux-(x64|arm64)\\.tar\\.gz$`));
  const into = path.join(dir, 'install');
  mkdirSync(into);
  execFileSync('tar', ['-xzf', tarball, '-C', into]);
  unpacked = path.join(into, `docker-worker-${version}`);
  env = { PATH: minimalPath(), HOME: dir, WORKER_STATE_DIR: path.join(dir, 'state'), WORKER_ID: workerId };
});

after(async () => {
  await removeOwnedBy(testEngine(), workerId);
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(unpacked, 'bin/worker'), args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`worker ${args.join(' ')} did not finish:\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

test('the package holds the worker, production dependencies only, and a pinned Node.js 24', () => {
  const info = JSON.parse(readFileSync(path.join(unpacked, 'build-info.json'), 'utf8'));
  assert.equal(info.version, version);
  assert.match(info.commit, /^[0-9a-f]{40}(-dirty)?$/);
  assert.match(info.node, /^24\.\d+\.\d+$/, 'an exact Node.js 24 release');
  assert.equal(execFileSync(path.join(unpacked, 'node/bin/node'), ['--version'], { encoding: 'utf8' }).trim(), `v${info.node}`);
  for (const f of ['bin/worker', 'lib/cli/main.ts', 'schemas/payload.json', 'node_modules/taskcluster-client/package.json', 'node_modules/dockerode/package.json', 'examples/hello-world.yml']) {
    assert.ok(existsSync(path.join(unpacked, f)), `${f} is in the package`);
  }
  for (const dev of ['typescript', '@types/dockerode', '@types/ws', '@types/tar-stream']) assert.ok(!existsSync(path.join(unpacked, 'node_modules', dev)), `dev dependency ${dev} is not`);
  assert.ok(!existsSync(path.join(unpacked, '.tools')) && !existsSync(path.join(unpacked, 'test')), 'no .tools, no tests');
  // Built for this machine's architecture (the package's here): the idle worker's malloc_trim.
  assert.ok(existsSync(path.join(unpacked, 'native/build/malloc-trim.node')), 'native/build/malloc-trim.node is in the package');
});

test('bin/worker --version prints the version and the commit, on the bundled Node with no node on PATH', async () => {
  const info = JSON.parse(readFileSync(path.join(unpacked, 'build-info.json'), 'utf8'));
  const { code, stdout, stderr } = await run(['--version']);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, `docker-worker ${version} (commit ${info.commit}, node ${info.node})\n`);
});

test('worker start and worker submit from the package run a real task on the embedded deployment', async () => {
  let worker: ChildProcess | undefined;
  let workerErr = '';
  try {
    worker = spawn(path.join(unpacked, 'bin/worker'), ['start', '--provisioner-id', 'local', '--worker-type', 'docker-worker'], { cwd: dir, env: { ...env, WORKER_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stderr!.on('data', (d: Buffer) => { workerErr += d.toString(); });
    const credentialsLine = await new Promise<string>((resolve, reject) => {
      let out = '';
      worker!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^credentials: (.+)$/m.exec(out);
        if (m) resolve(m[1]!);
      });
      worker!.on('exit', (code) => reject(new Error(`the packaged worker exited (${code}) before serving:\n${out}\n${workerErr}`)));
    });
    assert.equal(credentialsLine, path.join(dir, 'state/embedded/credentials.json'));

    const { code, stdout, stderr } = await run(['submit', path.join(unpacked, 'examples/hello-world.yml'), '--follow']);
    assert.equal(code, 0, `${stdout}\n${stderr}\nworker log:\n${workerErr}`);
    assert.match(stdout, /Hello from task [A-Za-z0-9_-]{22} on local\/docker-worker/);
    assert.match(stdout, /Worker Version: /);
    assert.match(stdout, /Successful task run with exit code: 0/);
    assert.match(workerErr, new RegExp(`"workerId":"${workerId}"|${workerId}`), 'the worker ran with the id the test gave it');
    assert.doesNotMatch(workerErr, /freed heap memory stays resident/, 'the packaged worker loads its malloc_trim addon');
    // 5 s after its last task: a full garbage collection (bin/worker runs Node with --expose-gc), then the trim.
    for (let i = 0; i < 150 && !/"heap memory handed back"/.test(workerErr); i++) await new Promise((r) => setTimeout(r, 100));
    const trim = workerErr.split('\n').find((line) => line.includes('"heap memory handed back"'));
    assert.ok(trim, `no "heap memory handed back" line within 15 s of the task:\n${workerErr.slice(-3000)}`);
    assert.match(trim, /"collected":true/);
    assert.match(trim, /"released":(true|false)/);
  } finally {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((resolve) => worker!.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
  }
  assert.equal(worker!.exitCode, 0, `the packaged worker stops cleanly on SIGTERM:\n${workerErr}`);
});

test("bin/docker-worker, worker-runner's entry in a docker-worker package, is worker start with the same flags, less the profile name", async () => {
  const child = spawn(path.join(unpacked, 'bin/docker-worker'), ['--worker-type', 'via-docker-worker', 'production'],
    { cwd: dir, env: { ...env, WORKER_STATE_DIR: path.join(dir, 'state-docker-worker') }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (/^credentials: /m.test(out) && /"worker started"/.test(err)) resolve(); });
    child.stderr!.on('data', () => { if (/^credentials: /m.test(out) && /"worker started"/.test(err)) resolve(); });
    void exited.then((code) => reject(new Error(`bin/docker-worker exited (${code}):\n${out}\n${err}`)));
  });
  assert.match(err, /"taskQueueId":"local\/via-docker-worker"/, 'the flag reached worker start');
  // `worker start` installs its SIGTERM handler just after it logs "worker started".
  await new Promise((r) => setTimeout(r, 500));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);
});
