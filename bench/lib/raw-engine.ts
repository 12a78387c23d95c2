// The floor: the same container lifecycles straight on the Docker engine with dockerode, with
// the container settings the worker's plan uses for a task (TTY, shm size, extra hosts), and
// nothing else: no queue, no task log, no artifacts.
import type { Readable } from 'node:stream';
import Dockerode from 'dockerode';

/** Every raw container carries this label (or HELD_LABEL); its value is the pid of the bench run that made it. */
export const RAW_LABEL = 'org.taskcluster.docker-worker.bench';
/** The value of the labels: the pid of this bench run (see removeRawLeftovers). */
export const RAW_OWNER = String(process.pid);
/** Raw containers kept for a whole benchmark (their files read again and again); removed by it, or as leftovers. */
export const HELD_LABEL = 'org.taskcluster.docker-worker.bench-held';

export function docker(): Dockerode {
  return new Dockerode({ socketPath: process.env.DOCKER_SOCKET || '/var/run/docker.sock' });
}

/** Container settings matching lib/task/plan.ts for a plain task. */
export function rawCreateOptions(image: string, cmd: string[]): Dockerode.ContainerCreateOptions {
  return {
    Image: image, Cmd: cmd, Tty: true, AttachStdin: false, AttachStdout: true, AttachStderr: true, OpenStdin: false, StdinOnce: false,
    Labels: { [RAW_LABEL]: RAW_OWNER },
    HostConfig: { ShmSize: 1_800_000_000, ExtraHosts: ['localhost.localdomain:127.0.0.1'] },
  };
}

export interface LifecycleTimes { totalMs: number; createMs: number; startMs: number; waitMs: number; removeMs: number; exitCode: number }

/** create -> start -> wait -> remove, each timed. */
export async function rawLifecycle(engine: Dockerode, image: string, cmd: string[]): Promise<LifecycleTimes> {
  const t0 = performance.now();
  const container = await engine.createContainer(rawCreateOptions(image, cmd));
  const t1 = performance.now();
  await container.start();
  const t2 = performance.now();
  const status = await container.wait() as { StatusCode: number };
  const t3 = performance.now();
  await removeContainer(container);
  const t4 = performance.now();
  return { totalMs: t4 - t0, createMs: t1 - t0, startMs: t2 - t1, waitMs: t3 - t2, removeMs: t4 - t3, exitCode: status.StatusCode };
}

export interface StreamTimes {
  bytes: number;
  /** start() called -> end of output */
  ms: number;
  totalMs: number;
  /** CPU time of this (the reading) process while the output streamed. */
  readerCpuMs: number;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

/** create -> start -> logs(follow) read to the end, as the worker reads a task's output. */
export async function rawLogsFollow(engine: Dockerode, image: string, cmd: string[]): Promise<StreamTimes> {
  const t0 = performance.now();
  const container = await engine.createContainer(rawCreateOptions(image, cmd));
  try {
    const t1 = performance.now();
    const cpu = process.cpuUsage();
    await container.start();
    const stream = await container.logs({ follow: true, stdout: true, stderr: true }) as unknown as Readable;
    const bytes = await drain(stream);
    const t2 = performance.now();
    const readerCpuMs = cpuMsSince(cpu);
    await container.wait();
    return { bytes, ms: t2 - t1, totalMs: performance.now() - t0, readerCpuMs };
  } finally {
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
}

/** create -> attach -> start, the attached stream read to the end. */
export async function rawAttach(engine: Dockerode, image: string, cmd: string[]): Promise<StreamTimes> {
  const t0 = performance.now();
  const container = await engine.createContainer(rawCreateOptions(image, cmd));
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true }) as unknown as Readable;
    const t1 = performance.now();
    const cpu = process.cpuUsage();
    const reading = drain(stream);
    await container.start();
    const bytes = await reading;
    const t2 = performance.now();
    const readerCpuMs = cpuMsSince(cpu);
    await container.wait();
    return { bytes, ms: t2 - t1, totalMs: performance.now() - t0, readerCpuMs };
  } finally {
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
}

/** Force-removes a container; one already gone or being removed (404, 409) counts as removed. */
export async function removeContainer(container: Dockerode.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== 404 && status !== 409) throw err;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes raw containers this run left, and those of bench runs that are gone (a crash). Another
 * bench run sharing the engine keeps its own: its label names a live pid.
 */
export async function removeRawLeftovers(engine: Dockerode): Promise<number> {
  const list = [
    ...(await engine.listContainers({ all: true, filters: { label: [RAW_LABEL] } })),
    ...(await engine.listContainers({ all: true, filters: { label: [HELD_LABEL] } })),
  ];
  const leftovers = list.filter((c) => {
    const owner = Number(c.Labels?.[RAW_LABEL] ?? c.Labels?.[HELD_LABEL]);
    // Labelled before the label named its run: left only if idle for ten minutes.
    if (!Number.isInteger(owner) || owner <= 0) return c.State !== 'running' && c.Created * 1000 < Date.now() - 600_000;
    return owner === process.pid || !alive(owner);
  });
  for (const c of leftovers) await engine.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
  return leftovers.length;
}
