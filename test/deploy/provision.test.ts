// The provisioning scripts (deploy/provision.sh), run as packer runs them — from the unpacked
// release package, `--package <tarball>` — inside a fresh Debian root file system made with
// debootstrap from Debian's packages (test/deploy/debian-rootfs.sh, cached) and run as a
// container. Then the installed machine is checked as a person would: the worker's version,
// the files and enabled units, `systemd-analyze verify` of the installed units, no keys in what
// would become the image; the keys unit's command makes the keys; and the worker started with
// docker-worker.service's own command line runs a task submitted from inside the machine.
// Two more fresh machines check the other paths: --host aws (the AMI's), and no package at
// all (the Vagrant VM's); --host worker-runner without Taskcluster's start-worker is refused.
//
// A container has no kernel of its own, so the kernel, its headers and v4l2loopback-dkms are
// left out (--no-kernel-modules) and nothing is started by systemd. The worker inside talks to
// the host's Docker engine through its socket (mounted): the task containers it creates are the
// host's, so a bind mount names a host path (the hello-world task has none; a cache would need
// the state directory at the same path on both sides).
//
// DOCKER_WORKER_PACKAGE names a tarball already built; otherwise scripts/package.sh builds one.
// Downloaded .deb files are kept in /var/cache/docker-worker/deploy-test-apt between runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { removeOwnedBy, testEngine } from '../support/docker.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const version = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version as string;
const machine = `dw-provision-${randomBytes(5).toString('hex')}`;
const awsMachine = `dw-provision-aws-${randomBytes(5).toString('hex')}`;
const devMachine = `dw-provision-dev-${randomBytes(5).toString('hex')}`;
const aptCache = '/var/cache/docker-worker/deploy-test-apt';
let tarball: string;
const started: string[] = [];

function docker(args: string[], options: { timeoutMs?: number } = {}): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }).trim();
}

/** Runs a command in the machine; resolves with its exit code and output. */
function inMachine(command: string, timeoutMs = 120_000, name = machine): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', ['exec', name, 'bash', '-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${command} did not finish:\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

async function ok(command: string, timeoutMs?: number, name = machine): Promise<string> {
  const { code, stdout, stderr } = await inMachine(command, timeoutMs, name);
  assert.equal(code, 0, `${command}\n${stdout}\n${stderr}`);
  return stdout;
}

before(async () => {
  const image = execFileSync(path.join(repoRoot, 'test/deploy/debian-rootfs.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 }).trim();
  tarball = process.env.DOCKER_WORKER_PACKAGE
    ?? execFileSync(path.join(repoRoot, 'scripts/package.sh'), { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  mkdirSync(path.join(aptCache, 'partial'), { recursive: true });
  for (const name of [machine, awsMachine, devMachine]) {
    docker(['run', '-d', '--name', name, '--hostname', name,
      '--label', 'org.taskcluster.docker-worker.test=deploy',
      '-v', `${tarball}:/tmp/docker-worker.tar.gz:ro`,
      '-v', `${aptCache}:/var/cache/deploy-test-apt`,
      ...(name === machine ? ['-v', '/var/run/docker.sock:/var/run/docker.sock'] : []),
      image, 'sleep', 'infinity']);
    started.push(name);
  }
});

after(async () => {
  for (const name of started) docker(['rm', '-f', '-v', name]);
  await removeOwnedBy(testEngine(), machine);
});

/** As packer does: unpack the package, run its deploy/provision.sh (apt's downloads kept in the mounted cache). */
function provision(name: string, flags: string, withPackage = true): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return inMachine(
    `echo 'Dir::Cache::Archives "/var/cache/deploy-test-apt/";' > /etc/apt/apt.conf.d/90-deploy-test-cache && ` +
    'mkdir -p /tmp/dw && tar -xzf /tmp/docker-worker.tar.gz -C /tmp/dw --strip-components=1 && ' +
    `/tmp/dw/deploy/provision.sh ${withPackage ? '--package /tmp/docker-worker.tar.gz' : ''} ${flags} --no-kernel-modules`, 900_000, name);
}

test('deploy/provision.sh, run from the unpacked package as packer runs it, installs the worker on a fresh Debian', async () => {
  const { code, stderr } = await provision(machine, '--host local');
  assert.equal(code, 0, stderr.slice(-8000));
  assert.match(stderr, /provision: done/);

  const info = JSON.parse(execFileSync('tar', ['-xzOf', tarball, `docker-worker-${version}/build-info.json`], { encoding: 'utf8' }));
  assert.equal((await ok('/opt/docker-worker/bin/worker --version')).trim(), `docker-worker ${version} (commit ${info.commit}, node ${info.node})`);
  assert.equal((await ok('readlink /opt/docker-worker')).trim(), `/opt/docker-worker-${version}`);
  assert.match(await ok('command -v dockerd apparmor_parser lvcreate lz4'), /dockerd[\s\S]*apparmor_parser[\s\S]*lvcreate[\s\S]*lz4/);

  const daemon = JSON.parse(await ok('cat /etc/docker/daemon.json'));
  assert.equal(daemon.icc, false);
  assert.equal(daemon['storage-driver'], 'overlay2');
  assert.ok(daemon['log-opts']['max-size'], 'container logs are bounded');
  assert.match(await ok('cat /etc/sysctl.d/90-docker-worker.conf /etc/modules-load.d/docker-worker.conf /etc/modprobe.d/docker-worker.conf'),
    /fs\.inotify\.max_user_watches[\s\S]*v4l2loopback[\s\S]*snd-aloop[\s\S]*options v4l2loopback/);
  assert.match(await ok('stat -c %a /etc/docker-worker/worker.yml'), /^600/);
  assert.equal((await ok('cat /etc/default/docker-worker')).match(/^DOCKER_WORKER_OPTS="(.*)"$/m)?.[1], '');

  const wants = await ok('ls /etc/systemd/system/multi-user.target.wants/');
  for (const unit of ['docker-worker.service', 'docker-worker-keys.service', 'docker.service']) assert.ok(wants.includes(unit), `${unit} is enabled: ${wants}`);
  assert.ok(!wants.includes('docker-worker-runner.service'));
  assert.equal((await ok('find /etc/systemd/system -name docker-worker-instance-storage.service -path "*.wants/*"')).trim(), '', 'a host of your own keeps its disks');

  // What would become the image carries no keys: they are made at first boot.
  assert.equal((await ok('find / -xdev \\( -name openpgp-private.asc -o -name ed25519-private.key \\) -print; find /var/lib/docker-worker -mindepth 1')).trim(), '');
});

test('--host aws installs the aws configuration, starts the worker with --host aws and uses the instance-store disks', async () => {
  const { code, stderr } = await provision(awsMachine, '--host aws');
  assert.equal(code, 0, stderr.slice(-8000));
  const opts = await ok('cat /etc/default/docker-worker', undefined, awsMachine);
  assert.equal(opts.match(/^DOCKER_WORKER_OPTS="(.*)"$/m)?.[1], '--host aws');
  assert.equal(await ok('cat /etc/docker-worker/worker.yml', undefined, awsMachine), await ok('cat /tmp/dw/deploy/config/aws.yml', undefined, awsMachine));
  for (const wants of ['docker.service.wants', 'docker-worker.service.wants']) {
    await ok(`test -L /etc/systemd/system/${wants}/docker-worker-instance-storage.service`, undefined, awsMachine);
  }
  await ok('test -L /etc/systemd/system/multi-user.target.wants/docker-worker.service', undefined, awsMachine);
});

test('--host worker-runner without Taskcluster\'s start-worker is refused before anything is installed', async () => {
  const { code, stderr } = await inMachine('/tmp/dw/deploy/provision.sh --package /tmp/docker-worker.tar.gz --host worker-runner', 60_000, awsMachine);
  assert.notEqual(code, 0);
  assert.match(stderr, /--host worker-runner needs Taskcluster's start-worker binary: give it with --start-worker FILE/);
  await ok('test ! -e /etc/docker-worker/start-worker.yml && test ! -L /etc/systemd/system/multi-user.target.wants/docker-worker-runner.service', undefined, awsMachine);
});

test('without --package (the Vagrant VM) it makes the Docker host and installs no worker', async () => {
  const { code, stderr } = await provision(devMachine, '', false);
  assert.equal(code, 0, stderr.slice(-8000));
  assert.equal(JSON.parse(await ok('cat /etc/docker/daemon.json', undefined, devMachine)).icc, false);
  await ok('command -v dockerd apparmor_parser lz4 && test -L /etc/systemd/system/multi-user.target.wants/docker.service && test -s /etc/sysctl.d/90-docker-worker.conf', undefined, devMachine);
  assert.equal((await ok('ls /opt; ls /etc/systemd/system | grep docker-worker || true', undefined, devMachine)).trim(), '', 'no worker, no worker units');
});

test('deploy/seal-image.sh, the last step of the image build, leaves no machine identity', async () => {
  await ok('rm /etc/apt/apt.conf.d/90-deploy-test-cache');
  await ok('echo 0123456789abcdef0123456789abcdef > /etc/machine-id');
  const { code, stderr } = await inMachine('/tmp/dw/deploy/seal-image.sh');
  assert.equal(code, 0, stderr);
  assert.equal(await ok('cat /etc/machine-id'), '', 'systemd makes a machine-id at each instance\'s first boot');
  assert.equal((await ok('ls /var/lib/apt/lists/')).trim(), '');
});

test('systemd-analyze verify accepts the installed units', async () => {
  const { code, stdout, stderr } = await inMachine('cd /etc/systemd/system && systemd-analyze verify docker-worker.service docker-worker-keys.service docker-worker-instance-storage.service');
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.equal(stderr.trim(), '', 'no warnings either');
});

test("docker-worker-keys.service's command makes the keys once and prints the public keys", async () => {
  // As systemd does: the environment file (if any), then $DOCKER_WORKER_OPTS split into words.
  const exec = `[ ! -f /etc/default/docker-worker ] || { set -a; . /etc/default/docker-worker; set +a; }; ${(await ok('sed -n "s/^ExecStart=//p" /etc/systemd/system/docker-worker-keys.service')).trim()}`;
  const first = await ok(exec);
  assert.match(first, /BEGIN PGP PUBLIC KEY BLOCK/);
  assert.match(await ok('stat -c "%a %n" /var/lib/docker-worker/keys/*'), /^600 \/var\/lib\/docker-worker\/keys\/ed25519-private\.key$/m);
  assert.equal(await ok(exec), first, 'the same keys at the next boot');

  const sealed = await inMachine('/tmp/dw/deploy/seal-image.sh');
  assert.notEqual(sealed.code, 0, 'an image is never sealed with keys in it');
  assert.match(sealed.stderr, /refusing: the image would carry the worker's private keys .*ed25519-private\.key/);
  assert.match(await ok('ls /var/lib/docker-worker/keys'), /ed25519-private\.key/, 'and the keys of this machine stay');
});

test("the worker, started with docker-worker.service's command line, runs a task submitted in the machine", async () => {
  const exec = (await ok('sed -n "s/^ExecStart=//p" /etc/systemd/system/docker-worker.service')).trim();
  // As systemd does: the environment file, then $DOCKER_WORKER_OPTS split into words.
  const worker = inMachine(`set -a; . /etc/default/docker-worker; set +a; cd /var/lib/docker-worker; echo $$ > /run/worker.pid; exec ${exec} 2>/run/worker.log`, 300_000);
  try {
    let ready = false;
    for (let i = 0; i < 200 && !ready; i++) {
      ready = (await inMachine('test -s /var/lib/docker-worker/embedded/credentials.json && grep -q "worker started" /run/worker.log')).code === 0;
      if (!ready) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(ready, `the worker started: ${(await inMachine('cat /run/worker.log')).stdout}`);
    const { code, stdout, stderr } = await inMachine('/opt/docker-worker/bin/worker submit --config /etc/docker-worker/worker.yml /opt/docker-worker/examples/hello-world.yml --follow', 180_000);
    assert.equal(code, 0, `${stdout}\n${stderr}\n${(await inMachine('tail -30 /run/worker.log')).stdout}`);
    assert.match(stdout, /Hello from task [A-Za-z0-9_-]{22} on local\/docker-worker/);
    assert.match(stdout, new RegExp(`Worker ID: ${machine}`));
    assert.match(stdout, /Successful task run with exit code: 0/);
  } finally {
    await inMachine('kill -TERM "$(cat /run/worker.pid)"');
  }
  const { code } = await worker;
  assert.equal(code, 0, `the worker stops cleanly on SIGTERM: ${(await inMachine('tail -20 /run/worker.log')).stdout}`);
});
