// The auth service's role endpoints: list (three shapes), get, create, update, delete.
// A role grants its scopes to anyone holding `assume:<roleId>` (see role-resolver.ts).
import scopeLib from 'taskcluster-lib-scopes';
import { Reply, type Handler } from '../api/service.ts';
import { conflict, inputError, notFound } from '../api/errors.ts';
import type { AuthState, RoleRecord } from './auth-state.ts';
import { RoleRuleError } from './role-resolver.ts';
import { checkRoleId, decodeContinuation, encodeContinuation, forbidDoubleStar, parseLimit } from './request-checks.ts';

interface RoleInput { description: string; scopes: string[] }

export function roleJson(state: AuthState, r: RoleRecord) {
  return {
    roleId: r.roleId,
    description: r.description,
    scopes: r.scopes,
    created: r.created,
    lastModified: r.lastModified,
    expandedScopes: state.roleExpandedScopes(r.roleId),
  };
}

/** One page of roles in roleId order, for listRoles2 and listRoleIds (no limit: all). */
function rolePage(state: AuthState, query: Record<string, string>): { roles: RoleRecord[]; continuationToken?: string } {
  const after = decodeContinuation(query.continuationToken);
  const limit = parseLimit(query.limit, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const all = state.roles().filter((r) => after === undefined || r.roleId > after);
  const roles = all.slice(0, limit);
  return all.length > limit ? { roles, continuationToken: encodeContinuation(roles[roles.length - 1].roleId) } : { roles };
}

/** Stores a role, turning invalid role sets (cycles, bad parameters) into 400s. */
function putRole(state: AuthState, roleId: string, decide: (existing: RoleRecord | undefined) => RoleRecord | undefined) {
  try {
    return state.putRole(roleId, decide);
  } catch (err) {
    if (err instanceof RoleRuleError) throw inputError(err.message, err.details);
    throw err;
  }
}

export function roleHandlers(state: AuthState): Record<string, Handler> {
  return {
    listRoles() {
      return state.roles().map((r) => roleJson(state, r));
    },

    listRoles2(req) {
      const { roles, continuationToken } = rolePage(state, req.query);
      return { roles: roles.map((r) => roleJson(state, r)), ...(continuationToken ? { continuationToken } : {}) };
    },

    listRoleIds(req) {
      const { roles, continuationToken } = rolePage(state, req.query);
      return { roleIds: roles.map((r) => r.roleId), ...(continuationToken ? { continuationToken } : {}) };
    },

    role(req) {
      checkRoleId(req.params.roleId);
      const role = state.findRole(req.params.roleId);
      if (!role) throw notFound(`Role ${req.params.roleId}`);
      return roleJson(state, role);
    },

    createRole(req) {
      const roleId = req.params.roleId;
      checkRoleId(roleId);
      const input = req.body as RoleInput;
      forbidDoubleStar(input.scopes);
      req.authorize({ scopes: input.scopes });
      const scopes = [...input.scopes].sort(scopeLib.scopeCompare);
      const now = new Date().toISOString();
      let existingSame: RoleRecord | undefined;
      const stored = putRole(state, roleId, (existing) => {
        if (!existing) return { roleId, description: input.description, scopes, created: now, lastModified: now };
        if (existing.description === input.description && JSON.stringify(existing.scopes) === JSON.stringify(scopes)) {
          existingSame = existing;
          return undefined;
        }
        throw conflict(`Role ${roleId} already exists with different settings. Use updateRole to change it.`, { roleId });
      });
      return roleJson(state, (stored ?? existingSame)!);
    },

    updateRole(req) {
      const roleId = req.params.roleId;
      checkRoleId(roleId);
      const input = req.body as RoleInput;
      forbidDoubleStar(input.scopes);
      const current = state.findRole(roleId);
      if (!current) throw notFound(`Role ${roleId}`);
      // The caller must hold only what the role did not already grant.
      const formerScopes = state.expandScopes(current.scopes);
      const scopesAdded = input.scopes.filter((s) => !scopeLib.satisfiesExpression(formerScopes, s));
      req.authorize({ scopesAdded });
      const stored = putRole(state, roleId, (existing) => {
        if (!existing) throw notFound(`Role ${roleId}`);
        return {
          ...existing, description: input.description,
          scopes: [...input.scopes].sort(scopeLib.scopeCompare), lastModified: new Date().toISOString(),
        };
      });
      return roleJson(state, stored!);
    },

    deleteRole(req) {
      checkRoleId(req.params.roleId);
      state.deleteRole(req.params.roleId);
      return new Reply(204, undefined);
    },
  };
}
