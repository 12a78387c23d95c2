declare module '@hapi/hawk' {
  type CredentialsFunc = (id: string) => { id: string; key: string; algorithm: 'sha256' } | Promise<{ id: string; key: string; algorithm: 'sha256' }>;
  interface Result { credentials: { id: string; key: string }; artifacts: Record<string, unknown> }
  const Hawk: {
    server: { authenticate(req: unknown, credentialsFunc: CredentialsFunc, options?: Record<string, unknown>): Promise<Result> };
    uri: { authenticate(req: unknown, credentialsFunc: CredentialsFunc, options?: Record<string, unknown>): Promise<Result> };
    client: {
      header(uri: string, method: string, options: Record<string, unknown>): { header: string };
      getBewit(uri: string, options: Record<string, unknown>): string;
    };
    utils: { parseAuthorizationHeader(header: string): Record<string, string> };
  };
  export default Hawk;
}
