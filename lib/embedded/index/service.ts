// The index service: insertTask, findTask, listNamespaces, listTasks, findTasksAtIndex,
// deleteTask and findArtifactFromTask, plus automatic indexing of completed tasks'
// `index.<namespace>` routes.
import taskcluster from 'taskcluster-client';
import type { EmbeddedContext, ServiceParts } from '../context.ts';
import type { Handler } from '../api/service.ts';
import { Reply } from '../api/service.ts';
import { satisfies } from '../api/scope-expression.ts';
import { IndexStore, checkNamespace } from './index-store.ts';
import { indexCompletedTasks } from './completed-task-indexer.ts';
import { pageRequest } from './paging.ts';

/** How long the signed queue URL of a private artifact is valid (as the real index). */
const SIGNED_URL_SECONDS = 15 * 60;

export function indexService(ctx: EmbeddedContext): ServiceParts {
  const index = new IndexStore(ctx.db);
  const unsubscribe = indexCompletedTasks(ctx.db, index, ctx.log);

  /** The queue URL of the task's latest artifact: plain when anonymous may read it, else signed. */
  function artifactUrl(rootUrl: string, taskId: string, name: string): string {
    const queue = new taskcluster.Queue({
      rootUrl, credentials: ctx.serviceCredentials, authorizedScopes: [`queue:get-artifact:${name}`],
    });
    const isPublic = satisfies(ctx.auth.expandScopes(['assume:anonymous']), `queue:get-artifact:${name}`);
    return isPublic
      ? queue.buildUrl(queue.getLatestArtifact, taskId, name)
      : queue.buildSignedUrl(queue.getLatestArtifact, taskId, name, { expiration: SIGNED_URL_SECONDS });
  }

  const handlers: Record<string, Handler> = {
    insertTask(req) {
      const body = req.body as { taskId: string; rank: number; data: Record<string, unknown>; expires: string };
      return index.insert(req.params.namespace, { ...body, expires: new Date(body.expires) });
    },
    findTask(req) {
      checkNamespace(req.params.indexPath, 'indexPath');
      return index.find(req.params.indexPath);
    },
    listNamespaces(req) {
      if (req.params.namespace !== '') checkNamespace(req.params.namespace); // '' is the root
      return index.listNamespaces(req.params.namespace, pageRequest(req.query));
    },
    listTasks(req) {
      if (req.params.namespace !== '') checkNamespace(req.params.namespace); // '' is the root
      return index.listTasks(req.params.namespace, pageRequest(req.query));
    },
    findTasksAtIndex(req) {
      const indexes = ((req.body as { indexes?: string[] }).indexes) ?? [];
      req.authorize({ indexPaths: indexes });
      return index.findMany(indexes, pageRequest(req.query));
    },
    deleteTask(req) {
      checkNamespace(req.params.namespace);
      index.delete(req.params.namespace);
      return {};
    },
    findArtifactFromTask(req) {
      checkNamespace(req.params.indexPath, 'indexPath');
      const task = index.find(req.params.indexPath);
      const url = artifactUrl(req.rootUrl, task.taskId, req.params.name);
      return new Reply(303, { url }, { location: url });
    },
  };

  return {
    handlers,
    sweep: () => index.sweep(),
    close: unsubscribe,
  };
}
