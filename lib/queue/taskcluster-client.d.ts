declare module 'taskcluster-client' {
  const taskcluster: {
    Queue: new (options: Record<string, unknown>) => any;
    Auth: new (options: Record<string, unknown>) => any;
    Index: new (options: Record<string, unknown>) => any;
    Object: new (options: Record<string, unknown>) => any;
    PurgeCache: new (options: Record<string, unknown>) => any;
    createTemporaryCredentials(options: Record<string, unknown>): { clientId: string; accessToken: string; certificate: string };
    slugid(): string;
    fromNow(offset: string, reference?: Date): Date;
    upload(options: Record<string, unknown>): Promise<void>;
    download(options: Record<string, unknown>): Promise<string>;
    downloadArtifact(options: Record<string, unknown>): Promise<string>;
    [other: string]: any;
  };
  export default taskcluster;
}
