// Role expansion rules (pure), matching the real auth service's ScopeResolver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoleResolver, RoleRuleError, validateRoles, type RoleRule } from '../../lib/embedded/auth/role-resolver.ts';

const resolve = (roles: RoleRule[], scopes: string[]) => new RoleResolver(roles).resolve(scopes);

test('scopes without assume: are only normalized', () => {
  assert.deepEqual(resolve([{ roleId: 'r', scopes: ['x'] }], ['b', 'a:1', 'a:*', 'b']), ['a:*', 'b']);
});

test('an exact role applies to its own id, and to star patterns covering it', () => {
  const roles = [{ roleId: 'team:a', scopes: ['s:a'] }, { roleId: 'team:b', scopes: ['s:b'] }];
  assert.deepEqual(resolve(roles, ['assume:team:a']), ['assume:team:a', 's:a']);
  assert.deepEqual(resolve(roles, ['assume:team:ab']), ['assume:team:ab']);
  assert.deepEqual(resolve(roles, ['assume:team:*']), ['assume:team:*', 's:a', 's:b']);
  assert.deepEqual(resolve(roles, ['assu*']), ['assu*', 's:a', 's:b']);
  assert.deepEqual(resolve(roles, ['*']), ['*']);
});

test('a prefix role substitutes <..>, and a trailing star replaces the rest of the scope', () => {
  const roles = [{ roleId: 'repo:*', scopes: ['push:<..>:branch', 'plain'] }];
  assert.deepEqual(resolve(roles, ['assume:repo:x/y']), ['assume:repo:x/y', 'plain', 'push:x/y:branch']);
  assert.deepEqual(resolve(roles, ['assume:repo:x/*']), ['assume:repo:x/*', 'plain', 'push:x/*']);
  assert.deepEqual(resolve(roles, ['assume:re*']), ['assume:re*', 'plain', 'push:*']);
  assert.deepEqual(resolve(roles, ['assume:rep']), ['assume:rep']);
});

test('<..> in an exact role is kept literally', () => {
  assert.deepEqual(resolve([{ roleId: 'lit', scopes: ['x:<..>'] }], ['assume:lit']), ['assume:lit', 'x:<..>']);
});

test('expansion follows chains through prefix roles', () => {
  const roles = [
    { roleId: 'hook-id:*', scopes: ['assume:project:<..>'] },
    { roleId: 'project:ci/nightly', scopes: ['assume:team:ci'] },
    { roleId: 'team:ci', scopes: ['queue:create-task:ci/*'] },
  ];
  assert.deepEqual(resolve(roles, ['assume:hook-id:ci/nightly']), [
    'assume:hook-id:ci/nightly', 'assume:project:ci/nightly', 'assume:team:ci', 'queue:create-task:ci/*',
  ]);
});

test('cycles and ambiguous parameters are refused', () => {
  const refuses = (roles: RoleRule[], pattern: RegExp) =>
    assert.throws(() => validateRoles(roles), (err: unknown) => err instanceof RoleRuleError && pattern.test(err.message));
  refuses([{ roleId: 'a', scopes: ['assume:b'] }, { roleId: 'b', scopes: ['assume:a'] }], /cycle.*assume:a/);
  refuses([{ roleId: 'a*', scopes: ['assume:ab<..>'] }], /cycle/);
  refuses([{ roleId: 'a', scopes: ['assume:*'] }], /cycle/);
  refuses([{ roleId: 'p*', scopes: ['x<..>y<..>'] }], /multiple/);
  refuses([{ roleId: 'p*', scopes: ['x*<..>'] }], /ambiguous/);
  validateRoles([{ roleId: 'a', scopes: ['assume:b'] }, { roleId: 'b', scopes: ['assume:c'] }, { roleId: 'p*', scopes: ['assume:q<..>'] }]);
});
