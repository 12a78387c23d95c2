// payload.features.allowPtrace through real tasks. Without docker-worker:feature:allowPtrace the
// run is refused with docker-worker's sentence. With it, the container's inspect shows exactly
// CAP_SYS_PTRACE added and, on a kernel with AppArmor, the run's own profile (none here: this
// machine's kernel has no AppArmor); a task without the feature shows neither.
// What a task can then do: the busybox test image has no strace or gdb, so the task uses the
// kernel's ptrace access check itself: reading /proc/<pid>/environ of a process of another user
// needs PTRACE_MODE_READ, which root in a container has only with CAP_SYS_PTRACE (Docker's
// default set lacks it). The same script reads it with the feature and is refused without.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { apparmorEnabled } from '../../lib/apparmor/apparmor-parser.ts';
import { ptraceProfileName } from '../../lib/apparmor/ptrace-profile.ts';

const engine = testEngine();
let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 2 } }); });
after(async () => { await h?.stop(); });

const SCOPE = 'docker-worker:feature:allowPtrace';
// Waits for the test to inspect the container, then starts a process as uid 1000 and reads its
// environment as root; CapEff is the effective capability mask (CAP_SYS_PTRACE is bit 19).
const PTRACE_SCRIPT = [
  'sleep 3',
  'echo "u:x:1000:1000::/:/bin/sh" >> /etc/passwd; echo "u:x:1000:" >> /etc/group',
  'su u -s /bin/sh -c "exec sleep 30" &',
  'while ! pid=$(pidof sleep); do usleep 50000; done',
  'if cat /proc/$pid/environ > /dev/null 2>&1; then echo "ptrace read: allowed"; else echo "ptrace read: denied"; fi',
  'kill $pid',
  'grep CapEff /proc/self/status',
  // Docker's `logs --follow` may end before it delivered what a container printed just before
  // it exited (seen here with several tasks at once; the log file has it): stay a moment.
  'sleep 1',
].join('\n');

/** The inspect of a task's container, while it runs. */
async function inspectTaskContainer(taskId: string): Promise<{ CapAdd?: string[] | null; SecurityOpt?: string[] | null }> {
  await h.waitForRunning(taskId);
  for (let i = 0; i < 100; i++) {
    const found = (await engine.listOwnedContainers(h.config.workerId)).find((c) => c.labels['taskcluster.task-id'] === taskId);
    if (found) return (await engine.inspectContainer(found.id)).HostConfig as { CapAdd?: string[] | null; SecurityOpt?: string[] | null };
    await sleep(50);
  }
  throw new Error(`no container for task ${taskId}`);
}

function ptraceBit(log: string): boolean {
  const mask = /^CapEff:\s+([0-9a-f]+)\r?$/m.exec(log);
  assert.ok(mask, log);
  return (BigInt(`0x${mask[1]}`) >> 19n & 1n) === 1n;
}

test('without docker-worker:feature:allowPtrace the task is refused with docker-worker\'s sentence', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60, features: { allowPtrace: true } });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
  const log = await h.taskLog(taskId);
  assert.match(log, /^\[taskcluster:error\] Insufficient scopes to use 'allowPtrace' feature\. {2}Try adding docker-worker:feature:allowPtrace to the \.scopes array\. payload\.features\.allowPtrace needs the scope docker-worker:feature:allowPtrace in task\.scopes$/m, log);
  assert.doesNotMatch(log, /=== Task Starting ===/);
});

test('with the scope the container gets CAP_SYS_PTRACE (and nothing else here) and may read another user\'s process environment (a ptrace access check); without the feature it may not', async () => {
  const withFeature = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', PTRACE_SCRIPT], maxRunTime: 60, features: { allowPtrace: true } }, { scopes: [SCOPE] });
  const without = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', PTRACE_SCRIPT], maxRunTime: 60 }, { scopes: [SCOPE] });
  const [hostWith, hostWithout] = await Promise.all([inspectTaskContainer(withFeature), inspectTaskContainer(without)]);
  const apparmor = await apparmorEnabled();
  assert.deepEqual(hostWith.CapAdd, ['SYS_PTRACE']);
  assert.deepEqual(hostWith.SecurityOpt ?? [], apparmor ? [`apparmor=${ptraceProfileName(withFeature, 0)}`] : []);
  assert.deepEqual(hostWithout.CapAdd ?? [], []);
  assert.deepEqual(hostWithout.SecurityOpt ?? [], []);

  assert.equal((await h.waitForResolution(withFeature)).state, 'completed');
  assert.equal((await h.waitForResolution(without)).state, 'completed');
  const logWith = await h.taskLog(withFeature);
  const logWithout = await h.taskLog(without);
  assert.match(logWith, /^ptrace read: allowed\r?$/m, logWith);
  assert.equal(ptraceBit(logWith), true);
  assert.match(logWithout, /^ptrace read: denied\r?$/m, logWithout);
  assert.equal(ptraceBit(logWithout), false);
});
