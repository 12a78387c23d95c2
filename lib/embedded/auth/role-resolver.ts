// Scope expansion with roles, as the Taskcluster auth service does it (its trie-based
// ScopeResolver, done here as a plain fixed point over a small role list):
//
// - `assume:<roleId>` grants the role's scopes, recursively.
// - A role whose id ends with `*` is a prefix role: `assume:repo:github.com/*` applies to
//   `assume:repo:github.com/foo`. Its scopes may hold one `<..>`, replaced by the part of the
//   assumed scope after the prefix (`foo`); when that part ends with `*`, `<..>` and what
//   follows it become that part.
// - A scope pattern ending in `*` (`assume:repo:*`, `assume:*`, `*`) assumes every role it
//   matches, prefix roles with the parameter `*`.
// - The result is a normalized scope set (taskcluster-lib-scopes).
import scopeLib from 'taskcluster-lib-scopes';

export interface RoleRule { roleId: string; scopes: string[] }

const PARAM = '<..>';
const ASSUME = 'assume:';

export function normalizeScopes(scopes: readonly string[]): string[] {
  return scopeLib.normalizeScopeSet([...scopes].sort(scopeLib.scopeCompare));
}

/** Whether a scope can assume roles: `assume:...` or a pattern such as `*` or `assu*`. */
function assumedInput(scope: string): string | undefined {
  if (scope.startsWith(ASSUME)) return scope.slice(ASSUME.length);
  if (scope.endsWith('*') && ASSUME.startsWith(scope.slice(0, -1))) return '*';
  return undefined;
}

function withParam(scopes: readonly string[], param: string): string[] {
  if (param.endsWith('*')) return scopes.map((s) => { const i = s.indexOf(PARAM); return i < 0 ? s : s.slice(0, i) + param; });
  return scopes.map((s) => s.replace(PARAM, param));
}

/** The scopes `role` grants to the assumed input (what follows `assume:`), or undefined. */
function grantedBy(role: RoleRule, input: string): string[] | undefined {
  const kleene = input.endsWith('*');
  const stem = kleene ? input.slice(0, -1) : input;
  if (role.roleId.endsWith('*')) {
    const prefix = role.roleId.slice(0, -1);
    if (input.startsWith(prefix)) return withParam(role.scopes, input.slice(prefix.length));
    if (kleene && prefix.startsWith(stem)) return withParam(role.scopes, '*');
    return undefined;
  }
  if (input === role.roleId || (kleene && role.roleId.startsWith(stem))) return role.scopes;
  return undefined;
}

export class RoleRuleError extends Error {
  readonly details: Record<string, unknown>;
  constructor(message: string, details: Record<string, unknown>) { super(message); this.details = details; }
}

/**
 * Throws RoleRuleError when the roles are not allowed together: a parameterized scope with
 * more than one `<..>` or ending in `*<..>`, or roles that assume each other in a cycle
 * (which the real service refuses because the expansion could be infinite).
 */
export function validateRoles(roles: readonly RoleRule[]): void {
  for (const role of roles) {
    if (!role.roleId.endsWith('*')) continue;
    for (const scope of role.scopes) {
      if (scope.indexOf(PARAM) !== scope.lastIndexOf(PARAM)) {
        throw new RoleRuleError(`parameterized scope '${scope}' in role ${role.roleId} contains multiple '<..>'`, { scope });
      }
      if (scope.endsWith(`*${PARAM}`)) {
        throw new RoleRuleError(`parameterized scope '${scope}' in role ${role.roleId} ends with '*<..>' which implies an ambiguous kleene`, { scope });
      }
    }
  }
  // A role depends on every role matched by one of its scopes, parameterized with '*'.
  const dependencies = (role: RoleRule): RoleRule[] => {
    const scopes = role.roleId.endsWith('*') ? withParam(role.scopes, '*') : role.scopes;
    const inputs = scopes.map(assumedInput).filter((i): i is string => i !== undefined);
    return roles.filter((other) => inputs.some((input) => grantedBy(other, input) !== undefined));
  };
  const done = new Set<RoleRule>();
  const stack: RoleRule[] = [];
  const visit = (role: RoleRule): void => {
    if (done.has(role)) return;
    const at = stack.indexOf(role);
    if (at >= 0) {
      const cycle = [...stack.slice(at), role].map((r) => `assume:${r.roleId}`);
      throw new RoleRuleError(`Roles may not contain dependency cycles, found: '${cycle.join("' -> '")}'`, { cycle });
    }
    stack.push(role);
    for (const dep of dependencies(role)) visit(dep);
    stack.pop();
    done.add(role);
  };
  for (const role of roles) visit(role);
}

const CACHE_LIMIT = 10_000;
const EXPANSION_LIMIT = 100_000;

/** Expands scope sets with a fixed set of roles; build a new one when roles change. */
export class RoleResolver {
  private readonly roles: readonly RoleRule[];
  /** Expansions of the assume-scopes of an input, keyed by those scopes. */
  private readonly cache = new Map<string, string[]>();

  constructor(roles: readonly RoleRule[]) {
    this.roles = roles.map((r) => ({ roleId: r.roleId, scopes: [...r.scopes] }));
  }

  resolve(scopes: readonly string[]): string[] {
    const inputs = normalizeScopes(scopes);
    const assumes = inputs.filter((s) => assumedInput(s) !== undefined);
    if (assumes.length === 0) return inputs;
    const key = assumes.join('\n');
    let granted = this.cache.get(key);
    if (!granted) {
      granted = this.expand(assumes);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(key, granted);
    }
    return scopeLib.mergeScopeSets(granted, inputs);
  }

  private expand(assumes: string[]): string[] {
    const granted = new Set<string>();
    const seen = new Set<string>();
    const queue = [...assumes];
    while (queue.length > 0) {
      const scope = queue.pop()!;
      if (seen.has(scope)) continue;
      seen.add(scope);
      if (seen.size > EXPANSION_LIMIT) throw new Error('role expansion does not terminate; the roles form a cycle');
      const input = assumedInput(scope)!;
      for (const role of this.roles) {
        const scopesOfRole = grantedBy(role, input);
        if (!scopesOfRole) continue;
        for (const s of scopesOfRole) {
          granted.add(s);
          if (!seen.has(s) && assumedInput(s) !== undefined) queue.push(s);
        }
      }
    }
    return normalizeScopes([...granted]);
  }
}
