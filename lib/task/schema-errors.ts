// Turns ajv's schema errors into sentences a task author can act on, naming the field
// (`payload.maxRunTime must be a number of seconds, got "abc"`). The schema's `x-expected`
// annotations supply the words for what was expected.
import type { ErrorObject } from 'ajv';

export { fieldName, payloadField } from '../payload/field-name.ts';
import { fieldName, payloadField } from '../payload/field-name.ts';

/** A short rendering of a value found in the payload, for "got ..." phrases. */
export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}

function expectedWords(schema: unknown): string | undefined {
  if (schema && typeof schema === 'object' && 'x-expected' in schema) {
    const words = (schema as Record<string, unknown>)['x-expected'];
    if (typeof words === 'string') return words;
  }
  return undefined;
}

function requiredMessage(err: ErrorObject): string {
  const missing = String(err.params.missingProperty);
  const field = fieldName(err.instancePath) + payloadField(missing).slice('payload'.length);
  const properties = (err.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  const words = expectedWords(properties?.[missing]);
  return words ? `${field} is required: ${words}` : `${field} is required`;
}

function typeWords(err: ErrorObject): string {
  const t = err.params.type;
  const list = Array.isArray(t) ? t : [t];
  const names: Record<string, string> = {
    string: 'a string', number: 'a number', integer: 'a whole number', boolean: 'true or false',
    object: 'an object', array: 'a list', null: 'null',
  };
  return list.map((x) => names[String(x)] ?? String(x)).join(' or ');
}

/** One readable sentence for an ajv error, or undefined for errors that only echo others. */
export function describeSchemaError(err: ErrorObject): string | undefined {
  const field = fieldName(err.instancePath);
  const words = expectedWords(err.parentSchema);
  switch (err.keyword) {
    case 'if':
      return undefined; // always accompanied by the error of the failing `then`
    case 'required':
      return requiredMessage(err);
    case 'type':
      return `${field} must be ${words ?? typeWords(err)}, got ${shown(err.data)}`;
    case 'enum': {
      const allowed = (err.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ');
      return `${field} must be ${words ?? `one of ${allowed}`}, got ${shown(err.data)}`;
    }
    case 'const':
      return `${field} must be ${JSON.stringify(err.params.allowedValue)}, got ${shown(err.data)}`;
    case 'format':
      return `${field} must be ${words ?? `in ${String(err.params.format)} format`}, got ${shown(err.data)}`;
    case 'minimum':
      return `${field} must be at least ${String(err.params.limit)}, got ${shown(err.data)}`;
    case 'maximum':
      return `${field} must be at most ${String(err.params.limit)}, got ${shown(err.data)}`;
    case 'multipleOf':
      return err.params.multipleOf === 1
        ? `${field} must be a whole number, got ${shown(err.data)}`
        : `${field} must be a multiple of ${String(err.params.multipleOf)}, got ${shown(err.data)}`;
    case 'additionalProperties':
      return `${fieldName(err.instancePath)}${payloadField(String(err.params.additionalProperty)).slice('payload'.length)} is not allowed here`;
    default:
      return `${field} ${err.message ?? 'is invalid'}`;
  }
}

/** All schema errors as sentences, without repeats, at most one per field. */
export function describeSchemaErrors(errors: readonly ErrorObject[]): string[] {
  const seenFields = new Set<string>();
  const out: string[] = [];
  for (const err of errors) {
    const sentence = describeSchemaError(err);
    if (!sentence) continue;
    const key = err.keyword === 'required' ? `${err.instancePath}/${String(err.params.missingProperty)}` : err.instancePath;
    if (seenFields.has(key)) continue;
    seenFields.add(key);
    out.push(sentence);
  }
  return out;
}
