// Creates a task on the embedded deployment, then takes it as a worker would: claimWork, then
// reportCompleted with the claim's own credentials. Run it from the repository (it uses the
// repository's node_modules) with Node.js 24, while `./bin/worker serve` runs:
//   node examples/embedded-client.js .state/embedded/credentials.json
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import taskcluster from 'taskcluster-client';

const file = process.argv[2] ?? '.state/embedded/credentials.json';
const { rootUrl, clientId, accessToken } = JSON.parse(readFileSync(file, 'utf8'));
const queue = new taskcluster.Queue({ rootUrl, credentials: { clientId, accessToken } });

// 1. Create a task, in a task queue of its own so that no running worker takes it first.
const taskId = taskcluster.slugid();
const taskQueueId = `walk-through/t${randomBytes(6).toString('hex')}`;
await queue.createTask(taskId, {
  taskQueueId,
  created: new Date().toJSON(),
  deadline: taskcluster.fromNowJSON('1 hour'),
  metadata: { name: 'walk-through', description: 'examples/embedded-client.js', owner: 'me@example.com', source: 'https://example.com' },
  payload: {},
});
console.log(`created task ${taskId} in ${taskQueueId}`);

// 2. Claim it, as a worker does (claimWork waits up to 20 s for work to arrive).
const { tasks } = await queue.claimWork(taskQueueId, { workerGroup: 'examples', workerId: 'walk-through', tasks: 1 });
if (tasks.length !== 1) throw new Error(`expected to claim ${taskId}, got ${tasks.length} tasks`);
const [claim] = tasks;
console.log(`claimed run ${claim.runId} as ${claim.credentials.clientId}`);

// 3. Resolve it with the claim's temporary credentials (they expire at claim.takenUntil).
const worker = new taskcluster.Queue({ rootUrl, credentials: claim.credentials });
const { status } = await worker.reportCompleted(taskId, claim.runId);
console.log(`task ${taskId} is ${status.state}`);
