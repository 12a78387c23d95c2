// The EC2 instance metadata service (IMDSv2: a session token from PUT /latest/api/token on
// every request, no fallback to the token-less IMDSv1) through the AWS SDK v3 client. Its
// address is a setting (host.metadataUrl) so tests talk to a fake on loopback.
import { MetadataService } from '@aws-sdk/ec2-metadata-service';

export interface InstanceMetadataOptions {
  /** Base URL, e.g. http://169.254.169.254 (only its origin is used). */
  url: string;
  /** Per-request timeout (default 2 s). */
  timeoutMs?: number;
  /** Retries of a failed request (default 2; 404 is an answer, not a failure). */
  retries?: number;
}

export class InstanceMetadata {
  readonly #service: MetadataService;

  constructor(options: InstanceMetadataOptions) {
    this.#service = new MetadataService({
      endpoint: new URL(options.url).origin,
      httpOptions: { timeout: options.timeoutMs ?? 2000 },
      ec2MetadataV1Disabled: true,
      retries: options.retries ?? 2,
      backoff: (failures: number) => 0.2 * (failures + 1),
    });
  }

  /** The text at `path` (e.g. 'latest/meta-data/instance-id'), or undefined when the service has none (404). */
  async get(path: string): Promise<string | undefined> {
    try {
      // The client puts the endpoint's path ('/') before it: no leading slash here.
      return await this.#service.request(path.replace(/^\/+/, ''), {});
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw err;
    }
  }
}
