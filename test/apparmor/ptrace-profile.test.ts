// allowPtrace's AppArmor profile: apparmor_parser accepts it (syntax and compile, -Q), it keeps
// docker-default's rules and allows ptrace only toward itself; the parser wrapper reports
// syntax errors, a kernel without AppArmor and a missing program clearly; detection reads sysfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allowPtraceHostConfig, allowPtraceScopeError, ptraceProfile, ptraceProfileName } from '../../lib/apparmor/ptrace-profile.ts';
import { AppArmorError, AppArmorParser, apparmorEnabled, APPARMOR_ENABLED_FILE } from '../../lib/apparmor/apparmor-parser.ts';

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
