import taskcluster from 'taskcluster-client';
const rootUrl = process.env.TASKCLUSTER_ROOT_URL!;
const credentials = { clientId: process.env.TASKCLUSTER_CLIENT_ID!, accessToken: process.env.TASKCLUSTER_ACCESS_TOKEN! };
const def = { taskQueueId: 'diff-prov/x', created: new Date().toJSON(), deadline: taskcluster.fromNow('1 hour').toJSON(), payload: {}, metadata: { name: 'a', description: 'b', owner: 'a@b.c', source: 'https://x.y/z' } };
for (const scopes of [[], ['queue:get-task:x']]) {
const noScopes = taskcluster.createTemporaryCredentials({ start: new Date(), expiry: taskcluster.fromNow('1 hour'), scopes, credentials });
const q = new taskcluster.Queue({ rootUrl, credentials: noScopes, retries: 0 });
try { await q.createTask(taskcluster.slugid(), def); } catch (e: any) { console.log(scopes, e.statusCode, e.body?.code, e.body?.message?.slice(0, 600)); }
}
