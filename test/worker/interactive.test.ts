// The interactive shell as a person uses it: the private artifact private/docker-worker/shell.html
// leads to the shell; docker-exec-websocket-server clients run commands (output, a long output
// through cat, resize, stdin closed, exit codes), the 11th session at once is refused; the
// container stays open after the command for minTime, while a session is open and for the expiry
// after the last one, never past maxRunTime; the task's result stays its command's; nothing is
// left once the run ended.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync, spawn } from 'node:child_process';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';
import { openShell } from '../support/shell-client.ts';
import { socketUrlFromPageUrl } from '../../lib/interactive/shell-location.ts';
import { Engine } from '../../lib/docker/engine.ts';

const MIN_TIME = 6;
const EXPIRY = 3;
let h: WorkerHarness;
before(async () => {
  h = await WorkerHarness.start({ config: { capacity: 3, 'interactive.minTimeSeconds': MIN_TIME, 'interactive.expirySeconds': EXPIRY } });
});
after(async () => { await h?.stop(); });

const interactiveTask = (script: string, maxRunTime = 120) => ({
  image: TASKENV_PASS, command: ['/bin/sh', '-c', script], maxRunTime, features: { interactive: true },
});

/** The page URL the private artifact redirects to (with the harness's credentials), once published. */
async function shellPageUrl(taskId: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const url = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, 'private/docker-worker/shell.html') as string;
    const res = await fetch(url, { redirect: 'manual' });
    if (res.status === 303 || res.status === 302) return new URL(res.headers.get('location')!, url).toString();
    await sleep(100);
  }
  throw new Error(`no shell artifact for ${taskId}`);
}

type RunTimes = { started: string; resolved: string };
const times = (status: { runs: unknown[] }) => status.runs[0] as RunTimes;

const ownContainers = async (taskId: string) =>
  (await new Engine().listOwnedContainers(h.config.workerId)).filter((c) => c.labels['taskcluster.task-id'] === taskId);

test('shell sessions: echo, 10 MB through cat, resize, stdin closed, exit codes; the 11th at once is refused; the task keeps its own result', async () => {
  // The command runs on while the sessions work (reaching the page through a real queue can take
  // longer than minTime, and on a loaded machine the sessions below took 15 s against the real
  // services); the hold after the command has tests of its own below.
  const taskId = await h.submit(interactiveTask('echo task-output; sleep 30; exit 3'));
  const page = await shellPageUrl(taskId);
  assert.match(page, /^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{32}\/shell\.html$/);
  const socket = socketUrlFromPageUrl(page);

  const echo = openShell(socket, ['echo', 'hello from the container']);
  assert.equal(await echo.exit, 0);
  assert.equal(echo.stdout().toString(), 'hello from the container\n');

  const failing = openShell(socket, ['sh', '-c', 'echo oops >&2; exit 7']);
  assert.equal(await failing.exit, 7);
  assert.equal(failing.stderr(), 'oops\n');

  const big = randomBytes(10 * 1024 * 1024);
  const cat = openShell(socket, ['cat']);
  for (let at = 0; at < big.length; at += 64 * 1024) cat.write(big.subarray(at, at + 64 * 1024));
  cat.end(); // stdin closed: cat ends
  assert.equal(await cat.exit, 0);
  assert.equal(cat.stdout().length, big.length);
  assert.equal(createHash('sha256').update(cat.stdout()).digest('hex'), createHash('sha256').update(big).digest('hex'));

  const sized = openShell(socket, ['sh', '-c', 'sleep 1; stty size'], true);
  sized.resize(41, 123);
  assert.equal(await sized.exit, 0);
  assert.match(sized.stdout().toString(), /41 123/);

  const notTty = openShell(socket, ['sh', '-c', 'sleep 1']);
  notTty.resize(10, 10);
  assert.equal(await notTty.exit, 0);
  assert.match(notTty.errors.join(), /not a tty/);

  const held = Array.from({ length: 10 }, () => openShell(socket, ['cat']));
  await Promise.all(held.map((s) => s.opened));
  await sleep(300);
  const eleventh = openShell(socket, ['echo', 'too many']);
  assert.equal(await eleventh.exit, null);
  assert.match(eleventh.errors.join(), /Too many sessions/);
  for (const s of held) s.end();
  assert.deepEqual(await Promise.all(held.map((s) => s.exit)), Array(10).fill(0));

  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'failed', 'the command exited 3: the sessions do not change that');
  assert.equal(status.runs[0]?.reasonResolved, 'failed');
  const log = await h.taskLog(taskId);
  assert.match(log, /task-output/);
  assert.match(log, /interactive: open a shell in this container through the artifact private\/docker-worker\/shell\.html/);

  // Nothing left: no container, no server, no hold directory.
  assert.deepEqual(await ownContainers(taskId), []);
  await assert.rejects(fetch(page), 'the shell server is closed');
  assert.deepEqual(readdirSync(path.join(h.stateDir, 'tmp')).filter((n) => n.startsWith('interactive-')), []);
});

test('the container is held for minTime after the start, and for the expiry after the last session', async () => {
  const taskId = await h.submit(interactiveTask('echo done'));
  const page = await shellPageUrl(taskId);
  const socket = socketUrlFromPageUrl(page);
  // The command ended at once; the container is still there and takes sessions.
  const first = openShell(socket, ['echo', 'still here']);
  assert.equal(await first.exit, 0);
  assert.equal(first.stdout().toString(), 'still here\n');
  // A session open past minTime keeps it.
  const open = openShell(socket, ['cat']);
  await open.opened;
  await sleep((MIN_TIME + 1) * 1000);
  assert.equal((await h.queue.status(taskId)).status.state, 'running', 'held while a session is open');
  const closedAt = Date.now();
  open.end();
  assert.equal(await open.exit, 0);
  await sleep((EXPIRY - 1) * 1000);
  assert.equal((await h.queue.status(taskId)).status.state, 'running', 'held for the expiry after the last session');
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'completed');
  assert.ok(new Date(times(status).resolved).getTime() >= closedAt + EXPIRY * 1000 - 1000, 'released after the expiry');
  assert.deepEqual(await ownContainers(taskId), []);
});

test('without sessions the container is released after minTime; never past maxRunTime, and the result stays the command\'s', async () => {
  const quick = await h.submit(interactiveTask('true'));
  // minTime is longer than maxRunTime allows: released before maxRunTime, not killed by it.
  const capped = await h.submit(interactiveTask('true', MIN_TIME - 2));
  const [q, c] = await Promise.all([h.waitForResolution(quick), h.waitForResolution(capped)]);
  assert.equal(q.state, 'completed');
  const heldMs = new Date(times(q).resolved).getTime() - new Date(times(q).started).getTime();
  assert.ok(heldMs >= MIN_TIME * 1000, `held ${heldMs} ms, at least minTime`);
  assert.equal(c.state, 'completed', await h.taskLog(capped));
  assert.doesNotMatch(await h.taskLog(capped), /Task timeout/);
});

const repoRoot = path.resolve(import.meta.dirname, '../..');

/** Runs bin/worker with the harness's credentials; `input` is its stdin (a pipe). */
function runWorkerCli(args: string[], input: string, wrapInTerminal = false): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env, TASKCLUSTER_ROOT_URL: h.rootUrl, TASKCLUSTER_CLIENT_ID: h.credentials.clientId, TASKCLUSTER_ACCESS_TOKEN: h.credentials.accessToken };
  const worker = path.join(repoRoot, 'bin/worker');
  // `script` gives the command a terminal of a known size (raw mode and the size are then the CLI's to pass on).
  const [cmd, argv] = wrapInTerminal
    ? ['script', ['-qec', `stty rows 33 cols 77; ${[worker, ...args].map((a) => `'${a}'`).join(' ')}`, '/dev/null']]
    : [worker, args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv as string[], { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`worker ${args.join(' ')} did not finish:\n${stdout}\n${stderr}`)); }, 60_000);
    child.on('exit', (code) => { clearTimeout(timer); child.stdin.destroy(); resolve({ code, stdout, stderr }); });
    // A terminal does not end its input; a pipe does (the shell then sees stdin closed).
    if (wrapInTerminal) child.stdin.write(input); else child.stdin.end(input);
    child.stdin.on('error', () => undefined);
  });
}

test('worker shell TASK_ID: finds the socket through the artifact with the caller\'s credentials; a terminal\'s size is passed on', async () => {
  const taskId = await h.submit(interactiveTask('echo done'));
  await shellPageUrl(taskId);
  const piped = await runWorkerCli(['shell', taskId], 'echo from-the-cli\nexit 5\n');
  assert.equal(piped.code, 5, piped.stderr);
  assert.equal(piped.stdout, 'from-the-cli\n');
  const withCommand = await runWorkerCli(['shell', taskId, '--run', '0', '--', 'sh', '-c', 'echo "$0 args"'], '');
  assert.equal(withCommand.stdout, 'sh args\n');
  // The size reaches the terminal just after the command started (Docker 20.10's exec has no initial size).
  const inTerminal = await runWorkerCli(['shell', taskId, '--', 'sh', '-c', 'sleep 1; stty size'], '', true);
  assert.match(inTerminal.stdout, /33 77/, inTerminal.stderr);
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
});

test('worker shell on a task without the interactive feature says what is missing', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60 });
  await h.waitForResolution(taskId);
  const result = await runWorkerCli(['shell', taskId], '');
  assert.equal(result.code, 2);
  assert.match(result.stderr, /has no private\/docker-worker\/shell\.html: the task must have payload\.features\.interactive/);
});

test('cancelling a held task ends its sessions and leaves nothing behind', async () => {
  const taskId = await h.submit(interactiveTask('true'));
  const page = await shellPageUrl(taskId);
  const session = openShell(socketUrlFromPageUrl(page), ['cat']);
  await session.opened;
  await h.queue.cancelTask(taskId);
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0]?.reasonResolved, 'canceled');
  // The session ends: its command killed with the container (137), or shut down by the worker.
  const code = await session.exit;
  assert.ok(code === 137 || (code === null && session.shutdown()), `session ended with ${code}`);
  // cancelTask resolves the run at once; the worker stops the run and cleans up just after.
  for (let i = 0; i < 100 && (await ownContainers(taskId)).length > 0; i++) await sleep(100);
  assert.deepEqual(await ownContainers(taskId), []);
  for (let i = 0; i < 50 && readdirSync(path.join(h.stateDir, 'tmp')).some((n) => n.startsWith('interactive-')); i++) await sleep(100);
  await assert.rejects(fetch(page), 'the shell server is closed');
  assert.deepEqual(readdirSync(path.join(h.stateDir, 'tmp')).filter((n) => n.startsWith('interactive-')), []);
});

test('with a certificate configured the page and the socket are https and wss', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shell-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const tls = await WorkerHarness.start({ config: {
    'interactive.minTimeSeconds': 1, 'interactive.expirySeconds': 1, 'interactive.publicHost': 'localhost',
    'interactive.tlsCertificatePath': cert, 'interactive.tlsKeyPath': key,
  } });
  try {
    const taskId = await tls.submit(interactiveTask('sleep 2'));
    let page = '';
    for (let i = 0; i < 200 && !page; i++) {
      const url = tls.queue.buildSignedUrl(tls.queue.getArtifact, taskId, 0, 'private/docker-worker/shell.html') as string;
      const res = await fetch(url, { redirect: 'manual' });
      if (res.status === 303) page = res.headers.get('location')!; else await sleep(100);
    }
    assert.match(page, /^https:\/\/localhost:\d+\/[A-Za-z0-9_-]{32}\/shell\.html$/);
    const socket = socketUrlFromPageUrl(page);
    assert.match(socket, /^wss:/);
    const shell = openShell(socket, ['echo', 'over tls'], false, { ca: readFileSync(cert) });
    assert.equal(await shell.exit, 0);
    assert.equal(shell.stdout().toString(), 'over tls\n');
    assert.equal((await tls.waitForResolution(taskId)).state, 'completed');
  } finally {
    await tls.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
