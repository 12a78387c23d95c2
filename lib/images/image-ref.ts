// Where a task's image comes from, as the plan states it.

/** Where the image comes from; `registry` names are normalized to carry a tag (`:latest`) or digest. */
export type ImageRef =
  | { kind: 'registry'; name: string }
  | { kind: 'indexed-image'; namespace: string; path: string }
  | { kind: 'task-image'; taskId: string; path: string };
