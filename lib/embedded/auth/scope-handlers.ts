// The auth service's "Scopes and Auth" endpoints: expandScopes, currentScopes,
// authenticateHawk (for services that verify Taskcluster credentials remotely) and the
// testAuthenticate pair (a fixed test client for checking client implementations).
import type { IncomingMessage } from 'node:http';
import Hawk from '@hapi/hawk';
import type { Handler, ApiRequest } from '../api/service.ts';
import { ApiError } from '../api/errors.ts';
import { authenticate, type AuthBackend, type Authenticated } from '../api/hawk-auth.ts';
import { assertSatisfies } from '../api/scope-expression.ts';
import type { AuthState } from './auth-state.ts';
import { testClientBackend, TEST_GET_SCOPES } from './test-client.ts';

interface HawkRequest {
  method: string; resource: string; host: string; port: number; authorization?: string; sourceIp?: string;
}

/** Authenticates the request again as the test client with `scopes`. */
async function asTester(req: ApiRequest, scopes: string[]): Promise<{ clientId: string; scopes: string[] }> {
  const url = new URL(req.raw.url ?? '/', req.rootUrl);
  const who = await authenticate(req.raw, testClientBackend(scopes), url);
  // Without credentials the real service reports this clientId and no scopes.
  if (who.clientId === undefined) return { clientId: 'auth-failed:no-auth', scopes: [] };
  return { clientId: who.clientId, scopes: who.scopes };
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function scopeHandlers(state: AuthState): Record<string, Handler> {
  // authenticateHawk checks the stored clients only: no path gets the test client.
  const storedClients: AuthBackend = {
    getClient: (clientId) => state.getClient(clientId),
    expandScopes: (scopes) => state.expandScopes(scopes),
  };

  return {
    expandScopes(req) {
      return { scopes: state.expandScopes(req.body.scopes as string[]) };
    },

    currentScopes(req) {
      return { scopes: req.scopes };
    },

    async testAuthenticate(req) {
      const body = req.body as { clientScopes: string[]; requiredScopes: string[] };
      const who = await asTester(req, body.clientScopes);
      assertSatisfies(who.clientId, who.scopes, { AllOf: body.requiredScopes });
      return who;
    },

    async testAuthenticateGet(req) {
      const who = await asTester(req, TEST_GET_SCOPES);
      assertSatisfies(who.clientId, who.scopes, 'test:authenticate-get');
      return who;
    },

    async authenticateHawk(req) {
      const input = req.body as HawkRequest;
      const headers: Record<string, string> = { host: `${hostForUrl(input.host)}:${input.port}` };
      if (input.authorization !== undefined) headers.authorization = input.authorization;
      const request = { method: input.method.toUpperCase(), url: input.resource, headers } as unknown as IncomingMessage;
      let who: Authenticated;
      try {
        const url = new URL(input.resource, `http://${hostForUrl(input.host)}:${input.port}`);
        who = await authenticate(request, storedClients, url);
      } catch (err) {
        if (err instanceof ApiError || err instanceof TypeError) return { status: 'auth-failed', message: err.message };
        throw err;
      }
      if (who.clientId === undefined) {
        return { status: 'no-auth', scheme: 'none', scopes: who.scopes, expires: new Date(Date.now() + 3600_000).toISOString() };
      }
      const hash = input.authorization ? Hawk.utils.parseAuthorizationHeader(input.authorization).hash : undefined;
      return {
        status: 'auth-success', scheme: 'hawk', clientId: who.clientId, scopes: who.scopes,
        expires: (who.expires ?? new Date(Date.now() + 3600_000)).toISOString(),
        ...(hash ? { hash } : {}),
      };
    },
  };
}
