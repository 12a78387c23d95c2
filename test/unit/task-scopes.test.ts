// The per-run scope object: raw scopes first; the roles are expanded at most once per run,
// only when the raw scopes fall short; a failed expansion is asked again next time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskScopes } from '../../lib/scopes/task-scopes.ts';

function expander(grants: Record<string, string[]>) {
  const calls: string[][] = [];
  const expand = async (scopes: string[]) => { calls.push(scopes); return [...scopes, ...scopes.flatMap((s) => grants[s] ?? [])]; };
  return { expand, calls };
}

test('raw scopes answer without asking; roles are expanded once for every later question', async () => {
  const { expand, calls } = expander({ 'assume:project:x': ['docker-worker:cache:x', 'queue:get-artifact:private/*'] });
  const scopes = new TaskScopes(['assume:project:x', 'docker-worker:cache:raw'], expand);
  assert.equal(await scopes.allows(['docker-worker:cache:raw']), true);
  assert.equal(calls.length, 0);
  assert.equal(await scopes.allows(['docker-worker:cache:x']), true);
  assert.equal(await scopes.allows(['queue:get-artifact:private/a.tar']), true);
  assert.equal(await scopes.allows(['docker-worker:cache:other']), false);
  assert.equal(calls.length, 1);
});

test('no scopes, or no expander: nothing is expanded', async () => {
  const { expand, calls } = expander({});
  assert.equal(await new TaskScopes([], expand).allows(['a']), false);
  assert.equal(await new TaskScopes(['assume:x']).allows(['a']), false);
  assert.equal(calls.length, 0);
});

test('a failed expansion is not remembered', async () => {
  let n = 0;
  const scopes = new TaskScopes(['assume:x'], async (s) => { n++; if (n === 1) throw new Error('auth down'); return [...s, 'a']; });
  await assert.rejects(scopes.allows(['a']), /auth down/);
  assert.equal(await scopes.allows(['a']), true);
  assert.equal(n, 2);
});
