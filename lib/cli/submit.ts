// `worker submit TASK.yml|json`: creates a task, filling what a hand-written task usually
// leaves out (taskId, created, deadline, expires, the task queue, metadata), prints the
// taskId and the live log URL; with --follow, streams the log and waits for the result.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import taskcluster from 'taskcluster-client';
import { loadConfig } from '../config/load.ts';
import { deploymentFor } from './deployment.ts';
import { queueClient, type TaskStatus } from '../queue/taskcluster.ts';
import { followLog } from './follow-log.ts';

export const usage = 'worker submit TASK.yml|json [--root-url URL] [--config FILE] [--provisioner-id P] [--worker-type T] [--follow]';

export function completeTask(task: Record<string, any>, defaults: { provisionerId: string; workerType: string }, now = new Date()): Record<string, any> {
  const out = { ...task };
  delete out.taskId;
  if (!out.taskQueueId && !(out.provisionerId && out.workerType)) {
    out.taskQueueId = `${out.provisionerId ?? defaults.provisionerId}/${out.workerType ?? defaults.workerType}`;
    delete out.provisionerId; delete out.workerType;
  }
  out.created ??= now.toISOString();
  out.deadline ??= taskcluster.fromNow('1 day', now).toISOString();
  out.expires ??= taskcluster.fromNow('30 days', new Date(out.deadline)).toISOString();
  out.metadata = { name: 'task', description: 'submitted with worker submit', owner: 'nobody@localhost.localdomain', source: 'https://localhost/worker-submit', ...(out.metadata ?? {}) };
  out.payload ??= {};
  return out;
}

export async function submit(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      'root-url': { type: 'string' }, config: { type: 'string' },
      'provisioner-id': { type: 'string' }, 'worker-type': { type: 'string' },
      follow: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw Object.assign(new Error(`expected one task file\nusage: ${usage}`), { name: 'ConfigError' });
  const config = loadConfig({ file: values.config, overrides: { rootUrl: values['root-url'], provisionerId: values['provisioner-id'], workerType: values['worker-type'] } });
  let parsed: unknown;
  try { parsed = YAML.parse(readFileSync(positionals[0], 'utf8')); } catch (e) {
    throw Object.assign(new Error(`cannot read task file ${positionals[0]}: ${(e as Error).message}`), { name: 'ConfigError' });
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw Object.assign(new Error(`${positionals[0]} must hold a task definition (an object)`), { name: 'ConfigError' });
  const given = parsed as Record<string, any>;
  const taskId: string = given.taskId ?? taskcluster.slugid();
  const task = completeTask(given, config);
  const deployment = deploymentFor(config);
  const queue = queueClient(deployment);
  await queue.createTask(taskId, task);
  const logName = (task.payload?.log as string | undefined) ?? 'public/logs/live.log';
  const logUrl = `${deployment.rootUrl}/api/queue/v1/task/${taskId}/artifacts/${encodeURIComponent(logName)}`;
  process.stdout.write(`${taskId}\n`);
  process.stderr.write(`live log: ${logUrl}\n`);
  if (!values.follow) return 0;
  const status: TaskStatus = await followLog(queue, taskId, logUrl, process.stdout);
  const reason = status.runs.at(-1)?.reasonResolved;
  process.stderr.write(`task ${taskId} ${status.state}${reason && reason !== status.state ? ` (${reason})` : ''}\n`);
  return status.state === 'completed' ? 0 : 1;
}
