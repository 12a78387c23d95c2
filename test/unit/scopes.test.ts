import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  cacheRequirement, deviceRequirement, featureRequirement, imageArtifactRequirement, isSatisfied,
  missingScopes, payloadScopeRequirements, privateImageRequirement, privilegedRequirement,
} from '../../lib/task/scopes.ts';
import type { Payload } from '../../lib/task/types.ts';

const POOL = 'proj-a/ci';

describe('privileged', () => {
  const req = privilegedRequirement(POOL);
  const cases: Array<[string[], boolean]> = [
    [['docker-worker:capability:privileged'], true],
    [['docker-worker:capability:privileged:proj-a/ci'], true],
    [['docker-worker:capability:privileged:proj-a/*'], true],
    [['docker-worker:capability:*'], true],
    [['docker-worker:*'], true],
    [['*'], true],
    [['docker-worker:capability:privileged:proj-b/ci'], false],
    [['docker-worker:capability:privilege'], false],
    [['docker-worker:capability:device:*'], false],
    [[], false],
  ];
  for (const [scopes, expected] of cases) {
    test(`${JSON.stringify(scopes)} -> ${expected}`, () => assert.equal(isSatisfied(scopes, req), expected));
  }

  test('the message names both accepted scopes and where to add them', () => {
    assert.deepEqual(missingScopes([], [req]), [
      'Insufficient scopes to run task in privileged mode. payload.capabilities.privileged needs the scope docker-worker:capability:privileged (or docker-worker:capability:privileged:proj-a/ci) in task.scopes',
    ]);
  });
});

describe('devices', () => {
  test('granted per device, per pool, or by a * glob', () => {
    const kvm = deviceRequirement('kvm', POOL);
    assert.equal(isSatisfied(['docker-worker:capability:device:kvm'], kvm), true);
    assert.equal(isSatisfied(['docker-worker:capability:device:kvm:proj-a/ci'], kvm), true);
    assert.equal(isSatisfied(['docker-worker:capability:device:*'], kvm), true);
    assert.equal(isSatisfied(['docker-worker:capability:device:kv*'], kvm), true);
    assert.equal(isSatisfied(['docker-worker:capability:device:loopbackAudio'], kvm), false);
    assert.equal(isSatisfied(['docker-worker:capability:device:kvm:proj-a/other'], kvm), false);
  });
});

describe('caches', () => {
  test('a prefix glob grants every cache under it', () => {
    const scopes = ['docker-worker:cache:gecko-level-3-*'];
    assert.equal(isSatisfied(scopes, cacheRequirement('gecko-level-3-checkouts', POOL)), true);
    assert.equal(isSatisfied(scopes, cacheRequirement('gecko-level-1-checkouts', POOL)), false);
  });

  test('the pool-qualified form grants only that pool', () => {
    const scopes = ['docker-worker:cache:objdir:proj-a/ci'];
    assert.equal(isSatisfied(scopes, cacheRequirement('objdir', POOL)), true);
    assert.equal(isSatisfied(scopes, cacheRequirement('objdir', 'proj-a/other')), false);
  });

  test('the message names the cache', () => {
    assert.deepEqual(missingScopes(['docker-worker:cache:other'], [cacheRequirement('level-3/checkouts', POOL)]), [
      'Insufficient scopes to attach cache volumes. payload.cache["level-3/checkouts"] needs the scope docker-worker:cache:level-3/checkouts (or docker-worker:cache:level-3/checkouts:proj-a/ci) in task.scopes',
    ]);
  });
});

describe('features', () => {
  test('allowPtrace and the Balrog proxies need docker-worker:feature:<name>', () => {
    for (const name of ['allowPtrace', 'balrogVPNProxy', 'balrogStageVPNProxy']) {
      const req = featureRequirement(name)!;
      assert.deepEqual(req.anyOf, [`docker-worker:feature:${name}`]);
      assert.equal(isSatisfied([`docker-worker:feature:${name}`], req), true);
      assert.equal(isSatisfied(['docker-worker:feature:*'], req), true);
      assert.equal(isSatisfied([], req), false);
    }
  });

  test('other features need no scope', () => {
    for (const name of ['taskclusterProxy', 'chainOfTrust', 'interactive', 'dockerSave', 'dind', 'relengAPIProxy', 'artifacts', 'teleport']) {
      assert.equal(featureRequirement(name), undefined, name);
    }
  });
});

describe('images', () => {
  test('image artifacts under public/ need no scope; others need queue:get-artifact:<path>', () => {
    assert.equal(imageArtifactRequirement({ kind: 'task-image', taskId: 't', path: 'public/image.tar.zst' }), undefined);
    assert.equal(imageArtifactRequirement({ kind: 'task-image', taskId: 't', path: '/public/image.tar' }), undefined);
    assert.equal(imageArtifactRequirement({ kind: 'registry', name: 'busybox:latest' }), undefined);
    const req = imageArtifactRequirement({ kind: 'indexed-image', namespace: 'ns', path: 'private/image.tar' })!;
    assert.deepEqual(req, { field: 'payload.image.path', anyOf: ['queue:get-artifact:private/image.tar'] });
    assert.equal(isSatisfied(['queue:get-artifact:private/*'], req), true);
    assert.equal(isSatisfied(['queue:get-artifact:public/*'], req), false);
  });

  test('a registry image pulled with worker credentials needs docker-worker:image:<name>', () => {
    const req = privateImageRequirement('registry.example.com/team/app:1.0');
    assert.equal(isSatisfied(['docker-worker:image:registry.example.com/team/*'], req), true);
    assert.deepEqual(missingScopes([], [req]), ['payload.image needs the scope docker-worker:image:registry.example.com/team/app:1.0 in task.scopes']);
  });
});

describe('all requirements of a payload', () => {
  const payload: Payload = {
    image: { type: 'task-image', taskId: 't', path: 'private/i.tar' },
    maxRunTime: 1,
    cache: { zeta: '/z', alpha: '/a' },
    capabilities: { privileged: true, disableSeccomp: true, devices: { kvm: true, loopbackVideo: false, hostSharedMemory: true } },
    features: { taskclusterProxy: true, allowPtrace: true, balrogVPNProxy: false },
  };

  test('are listed in a fixed order', () => {
    const fields = payloadScopeRequirements(payload, { kind: 'task-image', taskId: 't', path: 'private/i.tar' }, POOL).map((r) => r.field);
    assert.deepEqual(fields, [
      'payload.capabilities.privileged',
      'payload.capabilities.disableSeccomp',
      'payload.capabilities.devices.hostSharedMemory',
      'payload.capabilities.devices.kvm',
      'payload.cache.alpha',
      'payload.cache.zeta',
      'payload.features.allowPtrace',
    ]);
  });

  test('a broad scope satisfies them all; none is missing', () => {
    const reqs = payloadScopeRequirements(payload, { kind: 'task-image', taskId: 't', path: 'private/i.tar' }, POOL);
    assert.deepEqual(missingScopes(['docker-worker:*'], reqs), []);
    assert.equal(missingScopes(['docker-worker:cache:*'], reqs).length, 5);
  });
});
