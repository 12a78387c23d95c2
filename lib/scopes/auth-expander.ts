// The auth service's expandScopes through taskcluster-client, with the worker's credentials
// (the worker's client needs auth:expand-scopes).
import taskcluster from 'taskcluster-client';
import type { ScopeExpander } from './task-scopes.ts';

export function authScopeExpander(deployment: { rootUrl: string; credentials: { clientId: string; accessToken: string; certificate?: string } }): ScopeExpander {
  const Auth = (taskcluster as unknown as { Auth: new (o: unknown) => { expandScopes(body: { scopes: string[] }): Promise<{ scopes: string[] }> } }).Auth;
  const auth = new Auth({ rootUrl: deployment.rootUrl, credentials: deployment.credentials });
  return async (scopes) => (await auth.expandScopes({ scopes })).scopes;
}
