// The per-task network's pure parts: its name, and which source addresses the host-side
// proxies accept (the network's own containers; not its gateway, not other networks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressCheck, onTaskNetwork, taskNetworkName } from '../../lib/features/task-network.ts';

test('the network is named after the run, and the plan addition puts the task on it', () => {
  assert.equal(taskNetworkName('dSlITZ4yQgmvxxAi4A8fHQ', 2), 'taskcluster-task-dSlITZ4yQgmvxxAi4A8fHQ-2');
  assert.deepEqual(onTaskNetwork('-leadingDash_x', 0), { networkMode: 'taskcluster-task--leadingDash_x-0' });
});

test('only addresses inside the subnet, other than the gateway, are allowed', () => {
  const allows = addressCheck({ subnet: '192.168.16.0/20', gateway: '192.168.16.1' });
  assert.equal(allows('192.168.16.2'), true);
  assert.equal(allows('192.168.31.254'), true);
  assert.equal(allows('::ffff:192.168.16.3'), true, 'IPv4-mapped');
  assert.equal(allows('192.168.16.1'), false, 'the gateway is the host');
  assert.equal(allows('192.168.32.2'), false, 'another task network');
  assert.equal(allows('172.17.0.2'), false, 'the default bridge');
  assert.equal(allows('127.0.0.1'), false);
  assert.equal(allows('fe80::1'), false);
  assert.equal(allows(undefined), false);
});
