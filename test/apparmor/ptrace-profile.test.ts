// allowPtrace's AppArmor profile: apparmor_parser accepts it (syntax and compile, -Q), it keeps
// docker-default's rules and allows ptrace only toward itself; the parser wrapper reports
// syntax errors, a kernel without AppArmor and a missing program clearly; detection reads sysfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allowPtraceHostConfig, allowPtraceScopeError, ptraceProfile, ptraceProfileName } from '../../lib/apparmor/ptrace-profile.ts';
import { AppArmorError, AppArmorParser, apparmorEnabled, APPARMOR_ENABLED_FILE } from '../../lib/apparmor/apparmor-parser.ts';
import { prepareAllowPtrace } from '../../lib/apparmor/allow-ptrace.ts';

const parser = new AppArmorParser();
const name = ptraceProfileName('dSlITZ4yQgmvxxAi4A8fHQ', 0);
const hasParser = ['apparmor_parser', '/usr/sbin/apparmor_parser'].some((b) => spawnSync(b, ['--version']).status === 0);
const needsParser = { skip: !hasParser && 'apparmor_parser is not installed (make host-tools installs Debian\'s apparmor)' };

test('the profile is named after the task run and refuses unsafe names', () => {
  assert.equal(name, 'docker-worker-ptrace-dSlITZ4yQgmvxxAi4A8fHQ-0');
  assert.throws(() => ptraceProfileName('a b', 0), /cannot name an AppArmor profile/);
  assert.throws(() => ptraceProfile({ name: 'x}\n  capability sys_admin,\n' }), /not a valid AppArmor profile name/);
  assert.throws(() => ptraceProfile({ name, daemonProfile: 'a,b' }), /not a valid AppArmor profile name/);
});

test('the profile is docker-default plus ptrace (trace, read) toward itself only', () => {
  const text = ptraceProfile({ name });
  assert.match(text, new RegExp(`^#include <tunables/global>\\n\\nprofile ${name} flags=\\(attach_disconnected,mediate_deleted\\) \\{\\n  #include <abstractions/base>\\n`));
  for (const rule of ['deny mount,', 'deny @{PROC}/sysrq-trigger rwklx,', 'deny /sys/kernel/security/** rwklx,', `signal (send,receive) peer=${name},`, 'signal (receive) peer=unconfined,']) {
    assert.ok(text.includes(`  ${rule}\n`), rule);
  }
  const ptraceRules = text.split('\n').filter((l) => /^\s*(deny\s+)?ptrace/.test(l)).map((l) => l.trim());
  assert.deepEqual(ptraceRules, [`ptrace (trace, read) peer=${name},`, `ptrace (tracedby, readby) peer=${name},`]);
  assert.ok(!ptraceProfile({ name, includes: false }).includes('#include'));
});

test('apparmor_parser -Q accepts the generated profile, with and without the includes', needsParser, async () => {
  await parser.check(ptraceProfile({ name }));
  await parser.check(ptraceProfile({ name, includes: false, daemonProfile: 'docker-daemon' }));
});

test('apparmor_parser -Q refuses a broken profile, and the error names the profile and the parser\'s reason', needsParser, async () => {
  const broken = ptraceProfile({ name }).replace('ptrace (trace, read)', 'ptrace (trace, reed)');
  await assert.rejects(parser.check(broken), (e: Error) =>
    e instanceof AppArmorError && e.message.startsWith(`apparmor_parser could not check AppArmor profile ${name}: `) && /line \d+/.test(e.message) && !/Cache read/.test(e.message));
});

test('loading on a kernel without AppArmor fails with a clear error (and so does removing)', { skip: (!hasParser && 'apparmor_parser is not installed') || false }, async (t) => {
  if (await apparmorEnabled()) return t.skip('this kernel has AppArmor enabled: loading would succeed');
  await assert.rejects(parser.load(ptraceProfile({ name })), (e: Error) => e instanceof AppArmorError && e.message.includes(`could not load AppArmor profile ${name}`));
  await assert.rejects(parser.remove(ptraceProfile({ name })), (e: Error) => e instanceof AppArmorError && e.message.includes(`could not remove AppArmor profile ${name}`));
});

test('a missing apparmor_parser is reported as such', async () => {
  const missing = new AppArmorParser({ binary: '/nonexistent/apparmor_parser' });
  await assert.rejects(missing.check(ptraceProfile({ name })), new RegExp(`apparmor_parser is not installed, so AppArmor profile ${name} cannot be checked \\(Debian package: apparmor\\)`));
  await assert.rejects(missing.load(ptraceProfile({ name })), /cannot be loaded/);
});

test('AppArmor is detected from /sys/module/apparmor/parameters/enabled', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apparmor-'));
  const file = (text: string) => { const p = path.join(dir, `enabled-${text.trim() || 'empty'}`); writeFileSync(p, text); return p; };
  assert.equal(await apparmorEnabled(file('Y\n')), true);
  assert.equal(await apparmorEnabled(file('N\n')), false);
  assert.equal(await apparmorEnabled(path.join(dir, 'absent')), false);
  assert.equal(APPARMOR_ENABLED_FILE, '/sys/module/apparmor/parameters/enabled');
});

test('the container settings: the profile where AppArmor runs, CAP_SYS_PTRACE in both cases', () => {
  assert.deepEqual(allowPtraceHostConfig(name), { CapAdd: ['SYS_PTRACE'], SecurityOpt: [`apparmor=${name}`] });
  assert.deepEqual(allowPtraceHostConfig(undefined), { CapAdd: ['SYS_PTRACE'], SecurityOpt: [] });
  assert.equal(allowPtraceScopeError, "Insufficient scopes to use 'allowPtrace' feature.  Try adding docker-worker:feature:allowPtrace to the .scopes array.");
});

// prepareAllowPtrace: the lifecycle around apparmor_parser. Where the kernel has AppArmor this
// machine cannot load profiles, so a recording stand-in for apparmor_parser (a shell script
// that logs its arguments and the profile it read) shows what the real one would be asked.
function recordingParser(exitCode = 0): { parser: AppArmorParser; calls: () => { args: string; profile: string }[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apparmor-rec-'));
  const script = path.join(dir, 'apparmor_parser');
  writeFileSync(script, `#!/bin/sh\nn=$(ls ${dir} | grep -c '^call-')\necho "$*" > ${dir}/call-$n.args\ncat > ${dir}/call-$n.profile\n[ ${exitCode} -eq 0 ] || echo "AppArmor parser error: stand-in refusal" >&2\nexit ${exitCode}\n`, { mode: 0o755 });
  const calls = () => readdirSync(dir).filter((f) => f.endsWith('.args')).sort().map((f) => ({
    args: readFileSync(path.join(dir, f), 'utf8').trim(), profile: readFileSync(path.join(dir, f.replace('.args', '.profile')), 'utf8'),
  }));
  return { parser: new AppArmorParser({ binary: script }), calls };
}

test('allowPtrace without AppArmor: CAP_SYS_PTRACE only, apparmor_parser never runs, release is a no-op', async () => {
  const { parser, calls } = recordingParser();
  const p = await prepareAllowPtrace({ taskId: 'dSlITZ4yQgmvxxAi4A8fHQ', runId: 2, apparmor: false, parser });
  assert.deepEqual(p.hostConfig, { CapAdd: ['SYS_PTRACE'], SecurityOpt: [] });
  assert.equal(p.profileName, undefined);
  await p.release();
  assert.deepEqual(calls(), []);
});

test('allowPtrace with AppArmor: the run\'s profile is loaded (-r), used by the container, and removed (-R) once', async () => {
  const { parser, calls } = recordingParser();
  const p = await prepareAllowPtrace({ taskId: 'dSlITZ4yQgmvxxAi4A8fHQ', runId: 2, apparmor: true, parser });
  const profileName = 'docker-worker-ptrace-dSlITZ4yQgmvxxAi4A8fHQ-2';
  assert.equal(p.profileName, profileName);
  assert.deepEqual(p.hostConfig, { CapAdd: ['SYS_PTRACE'], SecurityOpt: [`apparmor=${profileName}`] });
  assert.deepEqual(calls().map((c) => c.args), ['-r -K']);
  assert.equal(calls()[0]!.profile, ptraceProfile({ name: profileName }));
  await Promise.all([p.release(), p.release()]);
  await p.release();
  assert.deepEqual(calls().map((c) => c.args), ['-r -K', '-R -K'], 'removed exactly once');
  assert.equal(calls()[1]!.profile, calls()[0]!.profile);
});

test('allowPtrace with AppArmor: a profile that cannot be loaded rejects with the parser\'s reason', async () => {
  const { parser } = recordingParser(1);
  await assert.rejects(prepareAllowPtrace({ taskId: 'dSlITZ4yQgmvxxAi4A8fHQ', runId: 0, apparmor: true, parser }),
    /^AppArmorError: apparmor_parser could not load AppArmor profile docker-worker-ptrace-dSlITZ4yQgmvxxAi4A8fHQ-0: AppArmor parser error: stand-in refusal$/m);
});

test('allowPtrace on this host, with the real apparmor_parser', needsParser, async () => {
  const enabled = await apparmorEnabled();
  const attempt = prepareAllowPtrace({ taskId: 'dSlITZ4yQgmvxxAi4A8fHQ', runId: 0 });
  if (!enabled) {
    const p = await attempt;
    assert.deepEqual(p.hostConfig, { CapAdd: ['SYS_PTRACE'], SecurityOpt: [] });
  } else {
    // Root on an AppArmor kernel: the profile really loads and goes away again.
    const p = await attempt;
    assert.deepEqual(p.hostConfig.SecurityOpt, [`apparmor=${p.profileName}`]);
    await p.release();
  }
});
