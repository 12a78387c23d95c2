// Scope expressions from the API references, with `<param>` templates, evaluated with
// taskcluster-lib-scopes (the same library the real services use).
import scopes from 'taskcluster-lib-scopes';
import { ApiError } from './errors.ts';

export type ScopeExpression = string | { AllOf: ScopeExpression[] } | { AnyOf: ScopeExpression[] };
type TemplateExpr = unknown;
export type Params = Record<string, unknown>;

export class MissingParam extends Error {
  readonly param: string;
  constructor(param: string) { super(`scope template parameter ${param} is not available`); this.param = param; }
}

function fill(template: string, params: Params): string {
  return template.replace(/<([^<>]+)>/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined || v === null) throw new MissingParam(name);
    if (typeof v !== 'string' && typeof v !== 'number') throw new MissingParam(name);
    return String(v);
  });
}

/** Expands a reference scope template into a plain expression; throws MissingParam. */
export function expandTemplate(expr: TemplateExpr, params: Params): ScopeExpression {
  if (typeof expr === 'string') return fill(expr, params);
  const e = expr as Record<string, unknown>;
  if ('AllOf' in e || 'AnyOf' in e) {
    const key = 'AllOf' in e ? 'AllOf' : 'AnyOf';
    const parts: ScopeExpression[] = [];
    for (const sub of e[key] as TemplateExpr[]) {
      const s = sub as Record<string, unknown>;
      if (s && typeof s === 'object' && 'each' in s) {
        const list = params[s.in as string];
        if (!Array.isArray(list)) throw new MissingParam(s.in as string);
        for (const item of list) parts.push(fill(s.each as string, { ...params, [s.for as string]: item }));
      } else {
        parts.push(expandTemplate(sub, params));
      }
    }
    return (key === 'AllOf' ? { AllOf: parts } : { AnyOf: parts });
  }
  if ('if' in e) {
    const cond = params[e.if as string];
    if (typeof cond !== 'boolean') throw new MissingParam(e.if as string);
    if (cond) return expandTemplate(e.then, params);
    if (e.else === undefined) return { AllOf: [] };
    return expandTemplate(e.else, params);
  }
  throw new Error(`unsupported scope template ${JSON.stringify(expr)}`);
}

export function satisfies(scopeset: string[], expression: ScopeExpression): boolean {
  return scopes.satisfiesExpression(scopeset, expression);
}

/** Throws InsufficientScopes naming what is missing, as the real services do. */
export function assertSatisfies(clientId: string | undefined, scopeset: string[], expression: ScopeExpression): void {
  if (satisfies(scopeset, expression)) return;
  const unsatisfied = scopes.removeGivenScopes(scopeset, expression);
  throw new ApiError('InsufficientScopes',
    `Client ID ${clientId ?? '(anonymous)'} does not have sufficient scopes and is missing the following scopes:\n\n` +
    '```\n' + JSON.stringify(unsatisfied, null, 2) + '\n```\n\n' +
    'This request requires the client to satisfy the following scope expression:\n\n' +
    '```\n' + JSON.stringify(expression, null, 2) + '\n```',
    { required: expression, unsatisfied });
}
