// The official Taskcluster API references and JSON schemas (extracted from
// shared/reference into schemas/taskcluster/references.json). The embedded services are
// driven by them: routes, input/output schemas and scope expressions come from here.
import { readFileSync } from 'node:fs';
import AjvDraft from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction, ErrorObject } from 'ajv';

const addFormats = addFormatsModule as unknown as (ajv: unknown) => void;
const Ajv = AjvDraft as unknown as typeof import('ajv').default;

export interface ReferenceEntry {
  type: string;
  method: 'get' | 'post' | 'put' | 'delete' | 'patch';
  route: string;
  name: string;
  args: string[];
  query?: string[];
  input?: string;
  output?: string | 'blob';
  scopes?: unknown;
  stability?: string;
  title?: string;
}

export interface ApiReference {
  serviceName: string;
  apiVersion: string;
  entries: ReferenceEntry[];
}

interface StoredFile { filename: string; content: Record<string, unknown> }

const file = new URL('../../../schemas/taskcluster/references.json', import.meta.url);
const stored: StoredFile[] = JSON.parse(readFileSync(file, 'utf8'));

export function apiReference(service: string): ApiReference {
  const found = stored.find((f) => f.filename === `references/${service}/v1/api.json`);
  if (!found) throw new Error(`no API reference for service ${service}`);
  return found.content as unknown as ApiReference;
}

function stripSchemaKeyword(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripSchemaKeyword);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === '$schema') continue;
      out[k] = stripSchemaKeyword(v);
    }
    return out;
  }
  return value;
}

let ajvInstance: InstanceType<typeof Ajv> | undefined;
function ajv(): InstanceType<typeof Ajv> {
  if (ajvInstance) return ajvInstance;
  const instance = new Ajv({ allErrors: true, strict: false, validateFormats: true });
  addFormats(instance);
  for (const f of stored) {
    if (!f.filename.startsWith('schemas/')) continue;
    const schema = stripSchemaKeyword(f.content) as Record<string, unknown>;
    if (typeof schema.$id !== 'string') continue;
    instance.addSchema(schema);
  }
  ajvInstance = instance;
  return instance;
}

const compiled = new Map<string, ValidateFunction>();

/** Resolves a reference's schema path ("v1/task.json#" or a full $id) to its $id. */
export function schemaId(service: string, ref: string): string {
  if (ref.startsWith('/schemas/')) return ref;
  return `/schemas/${service}/${ref.replace(/^\.\//, '')}`;
}

export function validatorFor(id: string): ValidateFunction {
  let v = compiled.get(id);
  if (!v) {
    const fn = ajv().getSchema(id);
    if (!fn) throw new Error(`unknown schema ${id}`);
    v = fn;
    compiled.set(id, v);
  }
  return v;
}

/** Validates `value` against the schema with `$id` id; returns readable errors or []. */
export function validateAgainst(id: string, value: unknown): string[] {
  const v = validatorFor(id);
  if (v(value)) return [];
  return (v.errors ?? []).map(describeError);
}

export function describeError(e: ErrorObject): string {
  const where = e.instancePath || '(root)';
  const extra = e.keyword === 'additionalProperties'
    ? ` (${(e.params as { additionalProperty: string }).additionalProperty})`
    : e.keyword === 'enum' ? ` (${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)})` : '';
  return `${where} ${e.message ?? e.keyword}${extra}`;
}
