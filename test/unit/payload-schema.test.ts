// schemas/payload.json must accept every payload that any published generation of the
// docker-worker payload schema accepted (test/fixtures/payloads/reference-schemas/).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import formatsPlugin from 'ajv-formats';
import { referenceSchema, validFixtures } from '../fixtures/payloads/load.ts';

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv;
const GENERATIONS = ['2018-standalone', 'v1-2020-standalone', 'v1-2025-08', 'v1'];

function compile(schema: Record<string, unknown>) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const { $schema: _draft, $id: _id, ...rest } = schema; // the references are draft-04/06; their keywords are draft-07 compatible
  return ajv.compile(rest);
}

const ours = compile(JSON.parse(readFileSync(new URL('../../schemas/payload.json', import.meta.url), 'utf8')));
const references = GENERATIONS.map((g) => ({ generation: g, accepts: compile(referenceSchema(g)!) }));

// Payloads on the edges where the generations disagree.
const EDGE_PAYLOADS: Record<string, unknown> = {
  'maxRunTime beyond every old cap (v1 has none)': { image: 'x', maxRunTime: 10_000_000 },
  'fractional-looking whole maxRunTime (2018 number)': { image: 'x', maxRunTime: 3600.0 },
  'env values that are not strings (2018)': { image: 'x', maxRunTime: 1, env: { N: 1, B: true } },
  'cache mount points that are not strings (2018)': { image: 'x', maxRunTime: 1, cache: { c: 3 } },
  'unknown feature (2018)': { image: 'x', maxRunTime: 1, features: { teleport: true } },
  'unknown top-level field (2018, 2020)': { image: 'x', maxRunTime: 1, reboot: true },
  'unknown capability and device (2018)': { image: 'x', maxRunTime: 1, capabilities: { gpu: true, devices: { gpu: true } } },
  'Testdroid phone (2018)': { image: 'x', maxRunTime: 1, capabilities: { devices: { phone: { type: 'flame', sims: '1', build: 'b', memory: 'm' } } } },
  'image objects with extra keys (2018)': { image: { type: 'task-image', taskId: 't', path: 'p', note: 1 }, maxRunTime: 1 },
  'artifact with extra keys (2018)': { image: 'x', maxRunTime: 1, artifacts: { a: { type: 'file', path: '/a', more: 1 } } },
  'volume artifact (v1)': { image: 'x', maxRunTime: 1, artifacts: { a: { type: 'volume', path: '/a' } } },
  'non-integer exit status (2018)': { image: 'x', maxRunTime: 1, onExitStatus: { retry: [1.5], extra: [] } },
  'supersederUrl that is not a URL (v1)': { image: 'x', maxRunTime: 1, supersederUrl: 'not a url' },
  'disableSeccomp (v1)': { image: 'x', maxRunTime: 1, capabilities: { disableSeccomp: true } },
  'dind and dockerSave (2018, v1-2025-08)': { image: 'x', maxRunTime: 1, features: { dind: true, dockerSave: true } },
  'empty image name (every generation)': { image: '', maxRunTime: 1 },
  'empty command': { image: 'x', maxRunTime: 1, command: [] },
  'custom log name': { image: 'x', maxRunTime: 1, log: 'apple/banana.log.txt' },
};

describe('the schema accepts what any reference generation accepted', () => {
  for (const [name, payload] of Object.entries(EDGE_PAYLOADS)) {
    test(name, () => {
      const acceptedBy = references.filter((r) => r.accepts(payload)).map((r) => r.generation);
      assert.ok(acceptedBy.length > 0, `no reference accepts this edge case; it does not belong in this list`);
      assert.equal(ours(payload), true, `accepted by ${acceptedBy.join(', ')} but rejected: ${JSON.stringify(ours.errors)}`);
    });
  }
});

describe('each valid fixture is a payload of its generation', () => {
  for (const fixture of validFixtures()) {
    const reference = references.find((r) => r.generation === fixture.generation);
    test(`${fixture.name} is accepted by ${fixture.generation}${reference ? '' : ' (no reference schema kept)'} and by ours`, () => {
      if (reference) assert.equal(reference.accepts(fixture.task.payload), true, JSON.stringify(reference.accepts.errors));
      assert.equal(ours(fixture.task.payload), true, JSON.stringify(ours.errors));
    });
  }
});

describe('what no generation accepted is still rejected', () => {
  const rejected: Record<string, unknown> = {
    'no image': { maxRunTime: 1 },
    'no maxRunTime': { image: 'x' },
    'maxRunTime as text': { image: 'x', maxRunTime: '60' },
    'zero maxRunTime': { image: 'x', maxRunTime: 0 },
    'unknown image kind': { image: { type: 'oci', path: 'p' }, maxRunTime: 1 },
    'indexed image without namespace': { image: { type: 'indexed-image', path: 'p' }, maxRunTime: 1 },
    'artifact of unknown type': { image: 'x', maxRunTime: 1, artifacts: { a: { type: 'link', path: '/a' } } },
    'artifact expiry that is not a date': { image: 'x', maxRunTime: 1, artifacts: { a: { type: 'file', path: '/a', expires: 'soon' } } },
    'known feature that is not a boolean': { image: 'x', maxRunTime: 1, features: { taskclusterProxy: 'yes' } },
    'command that is a string': { image: 'x', maxRunTime: 1, command: 'ls' },
  };
  for (const [name, payload] of Object.entries(rejected)) {
    test(name, () => {
      assert.equal(references.some((r) => r.accepts(payload)), false, 'a reference accepts it; move it to the edge cases');
      assert.equal(ours(payload), false);
    });
  }
});
