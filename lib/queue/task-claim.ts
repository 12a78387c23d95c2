// One claimed run: its ids, its current temporary credentials and takenUntil. Every call
// about the run uses queue() so it carries the newest credentials after each reclaim.
import { queueClient, parseTime, type ClaimResponse, type Credentials, type QueueClient, type ReclaimResponse } from './taskcluster.ts';

export class TaskClaim {
  readonly taskId: string;
  readonly runId: number;
  readonly rootUrl: string;
  readonly claim: ClaimResponse;
  private currentCredentials: Credentials;
  private currentTakenUntil: Date;
  private client: QueueClient;

  constructor(rootUrl: string, claim: ClaimResponse) {
    this.rootUrl = rootUrl;
    this.claim = claim;
    this.taskId = claim.status.taskId;
    this.runId = claim.runId;
    this.currentCredentials = claim.credentials;
    this.currentTakenUntil = parseTime(claim.takenUntil);
    this.client = queueClient({ rootUrl, credentials: claim.credentials });
  }

  get credentials(): Credentials { return this.currentCredentials; }
  get takenUntil(): Date { return this.currentTakenUntil; }
  queue(): QueueClient { return this.client; }

  update(reclaim: ReclaimResponse): void {
    this.currentCredentials = reclaim.credentials;
    this.currentTakenUntil = parseTime(reclaim.takenUntil);
    this.client = queueClient({ rootUrl: this.rootUrl, credentials: reclaim.credentials });
  }
}
