// PLACEHOLDER until the auth service is written: static clients only.
import type { Database } from '../store.ts';
import type { AuthBackend, StoredClient } from '../api/hawk-auth.ts';
import type { EmbeddedContext, ServiceParts } from '../context.ts';

export class AuthState implements AuthBackend {
  private readonly clients = new Map<string, StoredClient>();
  constructor(_db: Database) {}
  ensureStaticClient(clientId: string, accessToken: string, scopes: string[], _description: string): void {
    this.clients.set(clientId, { clientId, accessToken, expandedScopes: scopes, disabled: false, expires: new Date('3000-01-01') });
  }
  ensureDefaultRoles(): void {}
  getClient(clientId: string): StoredClient | undefined { return this.clients.get(clientId); }
  expandScopes(scopes: string[]): string[] { return scopes; }
}

export function authService(_ctx: EmbeddedContext, _state: AuthState): ServiceParts {
  return { handlers: {} };
}
