// How the worker names a payload field to a person: payload.artifacts["public/x"].path.

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `payload` + a JSON pointer, written the way a person would: payload.artifacts["public/x"].path */
export function fieldName(pointer: string, root = 'payload'): string {
  if (pointer === '') return root;
  let out = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (IDENTIFIER.test(seg)) out += `.${seg}`;
    else if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The readable name of a payload field from its path segments: payloadField('cache', 'a/b') -> payload.cache["a/b"] */
export function payloadField(...segments: string[]): string {
  return fieldName(segments.map((s) => `/${s.replace(/~/g, '~0').replace(/\//g, '~1')}`).join(''));
}
