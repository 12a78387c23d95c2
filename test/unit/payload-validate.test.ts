import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { knownFeatures } from '../../lib/features/catalogue.ts';
import { FEATURES } from '../../lib/features/registry.ts';
import { validatePayload } from '../../lib/task/validate.ts';
import { ALL_FEATURES, onlyFeatures } from '../support/features.ts';
import { invalidFixtures, validFixtures } from '../fixtures/payloads/load.ts';

const allFeatures = ALL_FEATURES;
const task = { expires: '2030-01-01T00:00:00.000Z' };

describe('payloads of every generation are accepted', () => {
  for (const fixture of validFixtures()) {
    test(`${fixture.name} (${fixture.generation})`, () => {
      const before = structuredClone(fixture.task.payload);
      const result = validatePayload(fixture.task.payload, fixture.task, { features: allFeatures });
      assert.equal(result.ok, true, result.ok ? '' : result.errors.join('\n'));
      assert.deepEqual(fixture.task.payload, before, 'validation must not change the payload');
      if (result.ok) assert.deepEqual(result.payload, fixture.task.payload);
    });
  }
});

describe('invalid payloads are rejected with readable errors naming each field', () => {
  for (const fixture of invalidFixtures()) {
    test(fixture.name, () => {
      const features = fixture.implementedFeatures ? onlyFeatures(fixture.implementedFeatures) : allFeatures;
      const result = validatePayload(fixture.task.payload, fixture.task, { features });
      assert.equal(result.ok, false);
      if (!result.ok) assert.deepEqual(result.errors, fixture.errors);
      assert.ok(fixture.errors.length > 0, 'the fixture must list its expected errors');
    });
  }

  test('several problems are reported together, not just the first', () => {
    const result = validatePayload({ maxRunTime: 'abc', env: { DEBUG: true } }, task);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.ok(result.errors.includes('payload.maxRunTime must be a number of seconds, got "abc"'));
    assert.ok(result.errors.some((e) => e.startsWith('payload.image is required')));
    assert.ok(!result.errors.some((e) => e.includes('DEBUG')), 'a non-string env value is not an error');
  });

  test('non-string env values (allowed by the 2014 and 2018 schemas) are passed as text, with a warning', () => {
    const result = validatePayload({ image: 'busybox', maxRunTime: 1, env: { DEBUG: true, COUNT: 3, OBJ: { a: 1 }, S: 's' } }, task);
    assert.equal(result.ok, true);
    if (!result.ok) return;
    assert.deepEqual(result.payload.env, { DEBUG: 'true', COUNT: '3', OBJ: '{"a":1}', S: 's' });
    assert.ok(result.warnings.some((w) => w.startsWith('payload.env.DEBUG is true, not a string')));
  });
});

describe('artifact expiry', () => {
  const payload = (expires: string) => ({ image: 'busybox', maxRunTime: 1, artifacts: { 'public/x': { type: 'file', path: '/x', expires } } });

  test('an artifact may expire with the task or before it', () => {
    assert.equal(validatePayload(payload('2030-01-01T00:00:00.000Z'), task).ok, true);
    assert.equal(validatePayload(payload('2029-12-31T23:59:59Z'), task).ok, true);
  });

  test('an artifact expiring after the task is malformed', () => {
    const result = validatePayload(payload('2030-01-01T00:00:00.001Z'), task);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.errors[0]!, /^payload\.artifacts\["public\/x"\]\.expires is 2030-01-01T00:00:00\.001Z, later than the task's expires 2030-01-01T00:00:00\.000Z/);
  });

  test('the rule is comparing instants, not strings (time zones)', () => {
    assert.equal(validatePayload(payload('2030-01-01T01:00:00+02:00'), task).ok, true);
    assert.equal(validatePayload(payload('2029-12-31T23:00:00-02:00'), task).ok, false);
  });
});

describe('features this worker does not provide', () => {
  test('the default set provides the features that are on by default', () => {
    for (const f of knownFeatures(FEATURES).filter((x) => x.defaultEnabled)) assert.ok(f.provided, f.name);
  });

  test('asking for one is an error naming it; setting it to false is fine', () => {
    const asked = validatePayload({ image: 'busybox', maxRunTime: 1, features: { dind: true } }, task);
    assert.deepEqual(asked, { ok: false, errors: ['payload.features.dind is not available on this worker; remove it or set it to false'], warnings: [] });
    assert.equal(validatePayload({ image: 'busybox', maxRunTime: 1, features: { dind: false, dockerSave: false } }, task).ok, true);
  });

  test('a build whose registry provides a feature accepts it', () => {
    const features = onlyFeatures([...FEATURES.map((f) => f.name), 'dind']);
    assert.equal(validatePayload({ image: 'busybox', maxRunTime: 1, features: { dind: true } }, task, { features }).ok, true);
  });

  test('an unknown feature set to false is only a warning', () => {
    const result = validatePayload({ image: 'busybox', maxRunTime: 1, features: { teleport: false } }, task);
    assert.equal(result.ok, true);
    assert.deepEqual(result.warnings, ['payload.features.teleport is not a docker-worker feature and is ignored']);
  });
});

describe('warnings for what the worker ignores', () => {
  test('reserved env names in the payload are ignored with a warning', () => {
    const result = validatePayload({ image: 'busybox', maxRunTime: 1, env: { RUN_ID: '7', TASKCLUSTER_ROOT_URL: 'https://evil' } }, task);
    assert.equal(result.ok, true);
    assert.deepEqual(result.warnings, [
      "payload.env.RUN_ID is set by the worker; the payload's value is ignored",
      "payload.env.TASKCLUSTER_ROOT_URL is set by the worker; the payload's value is ignored",
    ]);
  });
});

describe('bad input never throws', () => {
  const odd: unknown[] = [
    undefined, null, 0, 'busybox', [], true,
    { image: null, maxRunTime: null },
    { image: 'x', maxRunTime: 1, env: [], cache: 'x', artifacts: { a: null }, features: null, capabilities: { devices: [] } },
    { image: 'x', maxRunTime: 1, artifacts: [], onExitStatus: 'retry', command: [1, { a: 1 }] },
    { image: { type: 'task-image', taskId: 5, path: null, extra: { deep: [1] } }, maxRunTime: Number.MAX_VALUE },
    { image: 'x', maxRunTime: 1, features: { __proto__: true, constructor: true, toString: true } },
    JSON.parse('{"image":"x","maxRunTime":1,"env":{"__proto__":"x"},"cache":{"__proto__":"/c"}}'),
  ];
  for (const [i, payload] of odd.entries()) {
    test(`odd payload #${i}`, () => {
      const result = validatePayload(payload, task);
      if (!result.ok) for (const e of result.errors) assert.match(e, /^payload/);
    });
  }

  test('a task without expires skips the artifact expiry rule', () => {
    const result = validatePayload({ image: 'x', maxRunTime: 1, artifacts: { a: { type: 'file', path: '/a', expires: '2999-01-01T00:00:00Z' } } }, {});
    assert.equal(result.ok, true);
  });
});

describe('switches an older generation left untyped are read as docker-worker read them', () => {
  const base = { image: 'busybox', maxRunTime: 1 };

  test('a feature that is not true or false is on when truthy, with a warning naming it', () => {
    const result = validatePayload({ ...base, features: { chainOfTrust: 'x', azureLiveLog: 0 } }, task, { features: allFeatures });
    assert.equal(result.ok, true, result.ok ? '' : result.errors.join('\n'));
    if (!result.ok) return;
    assert.deepEqual(result.payload.features, { chainOfTrust: true, azureLiveLog: false });
    assert.ok(result.warnings.includes('payload.features.chainOfTrust is "x", not true or false; it is read as true (as docker-worker did: anything but false, 0, "" and null means true)'));
    assert.ok(result.warnings.some((w) => w.startsWith('payload.features.azureLiveLog is 0, not true or false; it is read as false')));
  });

  test('a truthy odd value still asks for the feature: this build provides chainOfTrust, so it is on', () => {
    const result = validatePayload({ ...base, features: { chainOfTrust: 'yes' } }, task);
    assert.equal(result.ok, true, result.ok ? '' : result.errors.join('\n'));
    if (!result.ok) return;
    assert.deepEqual(result.payload.features, { chainOfTrust: true });
  });

  test('a retired feature with a truthy odd value is refused', () => {
    const result = validatePayload({ ...base, features: { bufferLog: 'yes' } }, task);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.deepEqual(result.errors, ['payload.features.bufferLog is no longer supported (the buffered log was replaced by localLiveLog and bulkLog); remove it']);
  });

  test('encryptedEnv is a payload field, not a feature switch', () => {
    const result = validatePayload({ ...base, features: { encryptedEnv: true } }, task);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.match(result.errors[0] ?? '', /^payload\.features\.encryptedEnv is not a docker-worker feature; the features are: /);
  });

  test('capabilities.disableSeccomp and devices kvm/hostSharedMemory become true or false', () => {
    const result = validatePayload({ ...base, capabilities: { disableSeccomp: 'yes', devices: { kvm: 1, hostSharedMemory: null, phone: false } } }, task);
    assert.equal(result.ok, true, result.ok ? '' : result.errors.join('\n'));
    if (!result.ok) return;
    assert.deepEqual(result.payload.capabilities, { disableSeccomp: true, devices: { kvm: true, hostSharedMemory: false, phone: false } });
    assert.equal(result.warnings.length, 3, result.warnings.join('\n'));
  });

  test('a phone that is asked for (any truthy value) is refused; a falsy one is not', () => {
    for (const phone of ['x', 1, { type: 'flame' }]) {
      const result = validatePayload({ ...base, capabilities: { devices: { phone } } }, task);
      assert.equal(result.ok, false, JSON.stringify(phone));
    }
    for (const phone of ['', 0, null, false]) assert.equal(validatePayload({ ...base, capabilities: { devices: { phone } } }, task).ok, true, JSON.stringify(phone));
  });

  test('payload.log that is not a string keeps the default log name, with a warning', () => {
    const result = validatePayload({ ...base, log: 5 }, task);
    assert.equal(result.ok, true);
    assert.ok(result.warnings.includes('payload.log is 5, not an artifact name; the log keeps its default name public/logs/live.log'));
  });

  test('encryptedEnv that is not a list of strings is refused in words', () => {
    const result = validatePayload({ ...base, encryptedEnv: 5 }, task);
    assert.equal(result.ok, false);
    if (!result.ok) assert.deepEqual(result.errors, ['payload.encryptedEnv must be a list of base64 strings, got 5']);
  });
});
