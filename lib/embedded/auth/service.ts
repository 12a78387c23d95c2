// The embedded auth service: clients, roles and scope expansion, persisted in SQLite.
// AuthState is also the AuthBackend every embedded service authenticates requests with.
// Cloud-credential endpoints (AWS, Azure, GCP, Sentry, websocktunnel, GitHub) and the audit
// history are not implemented; the framework answers them with 501 NotImplemented.
import type { EmbeddedContext, ServiceParts } from '../context.ts';
import { AuthState } from './auth-state.ts';
import { clientHandlers } from './client-handlers.ts';
import { roleHandlers } from './role-handlers.ts';
import { scopeHandlers } from './scope-handlers.ts';

export { AuthState } from './auth-state.ts';
export type { ClientRecord, RoleRecord } from './auth-state.ts';

export function authService(ctx: EmbeddedContext, state: AuthState): ServiceParts {
  return {
    handlers: { ...clientHandlers(state), ...roleHandlers(state), ...scopeHandlers(state) },
    sweep() {
      const purged = state.purgeExpiredClients();
      if (purged > 0) ctx.log.info('auth: deleted expired clients marked deleteOnExpiration', { count: purged });
    },
  };
}
