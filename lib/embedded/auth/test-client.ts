// The fixed test client of the auth service's testAuthenticate and testAuthenticateGet:
// clientId `tester`, accessToken `no-secret`. It exists only for those two endpoints; its
// scopes are given per request and are not expanded by roles (as the real service does).
import type { AuthBackend, StoredClient } from '../api/hawk-auth.ts';

export const TEST_CLIENT_ID = 'tester';
export const TEST_ACCESS_TOKEN = 'no-secret';
/** The tester's scopes for testAuthenticateGet. */
export const TEST_GET_SCOPES = ['test:*', 'auth:create-client:test:*'];

const TEST_PATHS = new Set(['/api/auth/v1/test-authenticate', '/api/auth/v1/test-authenticate-get/']);

export function isTestAuthenticationPath(url: URL): boolean {
  return TEST_PATHS.has(url.pathname);
}

/** A backend that knows only the tester, with these scopes. */
export function testClientBackend(scopes: string[]): AuthBackend {
  const tester: StoredClient = {
    clientId: TEST_CLIENT_ID, accessToken: TEST_ACCESS_TOKEN, expandedScopes: scopes,
    disabled: false, expires: new Date(Date.now() + 24 * 3600 * 1000),
  };
  return {
    getClient: (clientId) => (clientId === TEST_CLIENT_ID ? tester : undefined),
    expandScopes: (s) => [...s],
  };
}

/**
 * The backend the API framework authenticates test requests with before the handler runs.
 * The handler authenticates again with the tester's real scopes (they come from the request
 * body, which authentication does not see) and uses only that result; this pass only checks
 * that the request is signed by the tester, so it lets any certificate scopes through.
 */
export const testSignatureOnlyBackend: AuthBackend = testClientBackend(['*']);
