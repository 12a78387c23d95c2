// A scope rule as the worker states it to a task owner: the payload field that needs it, the
// scopes any one of which grants it, and the sentence that says what is missing.
import { satisfiesAnyOf, type ScopeSet } from './task-scopes.ts';

/** A payload field and the scopes it needs: any one of `anyOf`. */
export interface ScopeRequirement {
  field: string;
  anyOf: string[];
  /** docker-worker's own first sentence for this refusal, which task owners may grep for. */
  summary?: string;
}

/** `scope` alone, or narrowed to one worker pool. */
export const poolScoped = (scope: string, workerPool: string): ScopeRequirement['anyOf'] => [scope, `${scope}:${workerPool}`];

export function isSatisfied(scopes: readonly string[], requirement: ScopeRequirement): boolean {
  return satisfiesAnyOf(scopes, requirement.anyOf);
}

/** "payload.capabilities.privileged needs the scope docker-worker:capability:privileged (or …:<pool>) in task.scopes" */
export function missingScopeMessage(requirement: ScopeRequirement): string {
  const [first, ...others] = requirement.anyOf;
  const alternatives = others.length ? ` (or ${others.join(' or ')})` : '';
  const summary = requirement.summary ? `${requirement.summary} ` : '';
  return `${summary}${requirement.field} needs the scope ${first}${alternatives} in task.scopes`;
}

/** One message per requirement the scopes do not satisfy; empty when all are satisfied. */
export function missingScopes(scopes: readonly string[], requirements: readonly ScopeRequirement[]): string[] {
  return requirements.filter((r) => !isSatisfied(scopes, r)).map(missingScopeMessage);
}

/** Like missingScopes, looking through the task's roles (expanded once per run) when needed. */
export async function unmetRequirements(scopes: ScopeSet, requirements: readonly ScopeRequirement[]): Promise<ScopeRequirement[]> {
  const unmet: ScopeRequirement[] = [];
  for (const r of requirements) if (!await scopes.allows(r.anyOf)) unmet.push(r);
  return unmet;
}
