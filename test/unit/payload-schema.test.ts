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

// A systematic walk: every object each reference schema describes (the root, image objects,
// capabilities, devices, features, artifacts, ...), every key it declares plus one it does
// not, each set to a value of every JSON type. Whatever a reference accepts, ours must accept
// — and the validator and the plan must not throw on it.
type Schema = Record<string, any>;
const SAMPLES: unknown[] = [
  null, true, false, 0, 1, 2.5, -1, '', 'x', 'yes', 'public/x', [], ['x'], [1], {}, { a: 1 },
  { type: 'flame', sims: '1', build: 'b', memory: 'm' }, { type: 'file', path: '/x' },
];

function resolve(node: Schema, root: Schema): Schema {
  let n = node;
  while (n && typeof n.$ref === 'string') n = n.$ref.replace(/^#\//, '').split('/').reduce((o: Schema, k: string) => o[k], root);
  return n;
}

/** A value `schema` accepts (best effort: the reference decides in the end). */
function minimal(node: Schema, root: Schema): unknown {
  const s = resolve(node, root);
  if (!s || typeof s !== 'object') return 'x';
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum)) return s.enum[0];
  if (s.oneOf || s.anyOf) return minimal((s.oneOf ?? s.anyOf)[0], root);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'string': return s.format === 'date-time' ? '2030-01-01T00:00:00.000Z' : s.format === 'uri' ? 'https://example.com/x' : 'x';
    case 'number': case 'integer': return s.minimum ?? 1;
    case 'boolean': return false;
    case 'array': return [];
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const key of s.required ?? []) out[key] = minimal(s.properties?.[key] ?? {}, root);
      return out;
    }
    default: return s.properties ? minimal({ ...s, type: 'object' }, root) : 'x';
  }
}

/** Every object schema under `node`, with the payload path where it applies (map values use the key "a"). */
function* objectsOf(node: Schema, root: Schema, path: string[]): Generator<{ path: string[]; schema: Schema }> {
  const s = resolve(node, root);
  if (!s || typeof s !== 'object') return;
  for (const branch of [...(s.oneOf ?? []), ...(s.anyOf ?? []), ...(s.allOf ?? [])]) yield* objectsOf(branch, root, path);
  if (s.type === 'object' || s.properties) {
    yield { path, schema: s };
    for (const [key, child] of Object.entries<Schema>(s.properties ?? {})) yield* objectsOf(child, root, [...path, key]);
    if (s.additionalProperties && typeof s.additionalProperties === 'object') yield* objectsOf(s.additionalProperties, root, [...path, 'a']);
  }
}

function setAt(value: unknown, path: string[], leaf: unknown): unknown {
  if (path.length === 0) return leaf;
  const base = value && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : {};
  return { ...base, [path[0]!]: setAt(base[path[0]!], path.slice(1), leaf) };
}

/** Every key any schema (the references and ours) declares for the object at this path. */
function keysAt(path: string[]): string[] {
  const keys = new Set<string>();
  const schemas = [...GENERATIONS.map((g) => referenceSchema(g)!), JSON.parse(readFileSync(new URL('../../schemas/payload.json', import.meta.url), 'utf8'))];
  for (const root of schemas) {
    for (const found of objectsOf(root, root, [])) {
      if (found.path.join('/') === path.join('/')) for (const key of Object.keys(found.schema.properties ?? {})) keys.add(key);
    }
  }
  return [...keys].sort();
}

describe('every key of every object of each reference schema, with every JSON type', () => {
  const payloadTask = { expires: '2031-01-01T00:00:00.000Z' };
  for (const generation of GENERATIONS) {
    const root = referenceSchema(generation)!;
    const accepts = references.find((r) => r.generation === generation)!.accepts;
    const seen = new Map<string, number>();
    for (const { path, schema } of objectsOf(root, root, [])) {
      const where = path.length ? `payload.${path.join('.')}` : 'payload';
      const nth = (seen.get(where) ?? 0) + 1;
      seen.set(where, nth);
      const variant = schema.properties?.type?.enum?.[0] ?? (nth > 1 ? `#${nth}` : undefined);
      test(`${generation}: ${where}${variant ? ` (${variant})` : ''}, ${schema.additionalProperties === false ? 'closed' : 'open'}`, async () => {
        const { planTask } = await import('../../lib/task/plan.ts');
        const { validatePayload } = await import('../../lib/task/validate.ts');
        const base = setAt(minimal(root, root), path, minimal(schema, root));
        // Declared here, declared by another generation or by ours, and one nobody declares.
        const keys = [...new Set([...Object.keys(schema.properties ?? {}), ...keysAt(path), 'someUndeclaredKey'])];
        let acceptedByReference = 0;
        for (const key of keys) {
          for (const sample of SAMPLES) {
            const payload = setAt(base, [...path, key], sample);
            if (!accepts(payload)) continue;
            acceptedByReference++;
            assert.equal(ours(payload), true, `${generation} accepts ${JSON.stringify(payload)} but ours rejects it: ${JSON.stringify(ours.errors)}`);
            const result = validatePayload(payload, payloadTask);
            if (result.ok) {
              planTask({
                taskId: 't', runId: 0, task: { provisionerId: 'p', workerType: 'w', created: '2030-01-01T00:00:00.000Z', deadline: '2030-01-02T00:00:00.000Z', scopes: [], payload },
                payload: result.payload, claim: { takenUntil: '2030-01-01T00:20:00.000Z' },
                worker: { provisionerId: 'p', workerType: 'w', workerGroup: 'g', workerId: 'i', rootUrl: 'https://tc', instanceType: 'x', publicIp: '1.2.3.4', allowPrivileged: false, devices: {}, workerVersion: '0', hostname: 'h' },
              });
            }
          }
        }
        assert.ok(acceptedByReference > 0, `the walk built no payload ${generation} accepts at ${where}; fix minimal()`);
      });
    }
  }
});
