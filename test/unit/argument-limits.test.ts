// The execve limits the worker checks before it creates a container, and the sentence it writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argumentLimitProblem, ARG_MAX, MAX_ARG_STRLEN } from '../../lib/task/argument-limits.ts';

test('ordinary env and commands start', () => {
  assert.equal(argumentLimitProblem(['A=1', 'PATH=/bin'], ['/bin/sh', '-c', 'echo hi']), undefined);
  assert.equal(argumentLimitProblem([`BIG=${'x'.repeat(MAX_ARG_STRLEN - 5)}`], ['true']), undefined, 'exactly at the limit (NAME=value and its NUL)');
});

test('one variable over MAX_ARG_STRLEN is named, with its size and the limit', () => {
  const problem = argumentLimitProblem(['A=1', `HUGE_VALUE=${'x'.repeat(1024 * 1024)}`], ['true']);
  assert.match(problem!, /^The environment variable HUGE_VALUE is 1,048,588 bytes \(as NAME=value\); Linux starts a command with at most 131,072 bytes per variable \(MAX_ARG_STRLEN\)/);
  assert.match(problem!, /Pass large values in a file instead/);
});

test('one argument over MAX_ARG_STRLEN is numbered', () => {
  assert.match(argumentLimitProblem([], ['/bin/sh', '-c', 'x'.repeat(200_000)])!, /^Argument 3 of the command is 200,001 bytes/);
});

test('many small strings together over ARG_MAX', () => {
  const env = Array.from({ length: 40 }, (_, i) => `V${i}=${'y'.repeat(60_000)}`);
  assert.match(argumentLimitProblem(env, ['true'])!, new RegExp(`together are [0-9,]+ bytes; Linux starts a command with at most ${ARG_MAX.toLocaleString('en-US')}`));
});
