// dockerode's unused dependencies (ssh2 for ssh:// hosts, gRPC for BuildKit sessions) are not
// loaded by the worker, and anything that would use them gets a plain error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Engine } from '../../lib/docker/engine.ts';
import { testEngine } from '../support/docker.ts';

const require = createRequire(import.meta.url);

test('loading the engine adapter loads neither ssh2 nor gRPC, and the engine still answers', async () => {
  assert.ok(Engine);
  const heavy = Object.keys(require.cache).filter((file) => /node_modules\/(ssh2|@grpc|protobufjs)\//.test(file));
  assert.deepEqual(heavy, []);
  await testEngine().ping();
});

test('what dockerode would use them for fails with a sentence saying so', () => {
  const modemSsh = require('docker-modem/lib/ssh.js') as (options: object) => unknown;
  assert.throws(() => modemSsh({ host: 'example.com' }), /ssh:\/\/ Docker hosts, BuildKit sessions\) is not loaded by docker-worker/);
});
