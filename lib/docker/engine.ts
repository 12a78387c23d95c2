// The Docker engine adapter: the one module that talks to dockerode. Everything it creates
// (containers, networks, volumes) carries the owner labels from labels.ts; every error comes
// out as an EngineError with a plain message. Streams (logs, archives, image loads) are passed
// through, never buffered.
//
// Anonymous volumes too: the volumes an image's VOLUME lines (or Config.Volumes) would make
// are asked for as explicit, still anonymous, volume mounts carrying the owner labels (and
// LABEL_ANONYMOUS_VOLUME), so a volume a failed removal left behind is found and collected by
// the disk budget like everything else the worker made.
import path from 'node:path';
import { Readable, Transform, type Duplex } from 'node:stream';
import './lean-dockerode.ts'; // before dockerode: keeps its unused ssh2 and gRPC out
import Dockerode from 'dockerode';
import { EngineError, toEngineError } from './engine-error.ts';
import { LABEL_ANONYMOUS_VOLUME, isOwned, ownerLabelFilters, ownerLabels, type Owner } from './labels.ts';
import { readJsonLines } from './json-lines.ts';
import { attachOutput, type AttachedOutput, type OutputSink } from './attach-socket.ts';
import { FrameSplitter } from './frames.ts';
import { DEFAULT_ENGINE_TIMEOUTS, StallClock, answerWithin, engineHungError, engineStalledError, type EngineTimeouts } from './engine-deadline.ts';

export type ContainerCreateOptions = Dockerode.ContainerCreateOptions;
export type ContainerInspectInfo = Dockerode.ContainerInspectInfo;
export type ImageInspectInfo = Dockerode.ImageInspectInfo;
export type NetworkCreateOptions = Omit<Dockerode.NetworkCreateOptions, 'Name' | 'Labels'>;

export const DEFAULT_SOCKET_PATH = '/var/run/docker.sock';

/** How long a removal another request has under way may take before removeContainer gives up on it. */
const REMOVAL_IN_PROGRESS_WAIT_MS = 30_000;

export interface EngineOptions {
  socketPath?: string;
  /** How long the calls a task makes before its container starts may go unanswered (engine-deadline.ts). */
  timeouts?: Partial<EngineTimeouts>;
}

export interface ExitStatus {
  exitCode: number;
  oomKilled: boolean;
}

export interface OwnedContainer { id: string; name: string; image: string; state: string; created: Date; labels: Record<string, string> }
export interface OwnedNetwork { id: string; name: string; labels: Record<string, string> }
export interface NetworkAddresses { subnet: string; gateway: string }
export interface OwnedVolume { name: string; mountpoint: string; labels: Record<string, string> }
export interface ImageSummary { id: string; repoTags: string[]; repoDigests: string[]; size: number; created: Date; labels: Record<string, string> }

/** Credentials for one registry, as the engine's X-Registry-Auth wants them. */
export interface RegistryAuth { username: string; password: string; serveraddress: string }

/** One event of a pull's progress stream, as the daemon sends it. */
export interface PullEvent {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
}

export interface LoadedImages { names: string[]; ids: string[] }

export interface ExecSession {
  /** stdin (when requested) in, raw output out (stdout and stderr merged unless Tty). */
  stream: Duplex;
  resize(rows: number, columns: number): Promise<void>;
  /** Exit code once the command ended, null while it runs. */
  exitCode(): Promise<number | null>;
}

export class Engine {
  readonly socketPath: string;
  readonly timeouts: EngineTimeouts;
  private readonly docker: Dockerode;

  constructor(options: EngineOptions = {}) {
    this.socketPath = options.socketPath ?? DEFAULT_SOCKET_PATH;
    this.timeouts = { ...DEFAULT_ENGINE_TIMEOUTS, ...options.timeouts };
    this.docker = new Dockerode({ socketPath: this.socketPath });
  }

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toEngineError(err, action, this.socketPath);
    }
  }

  /**
   * Like call(), but the engine has timeouts.callMs to answer; past that the call fails as an
   * engine that does not answer. Should the engine answer later, `undo` removes what it made.
   */
  private bounded<T>(action: string, fn: () => Promise<T>, undo?: (value: T) => Promise<unknown>): Promise<T> {
    return answerWithin(this.call(action, fn), this.timeouts.callMs, () => engineHungError(action, this.timeouts.callMs, this.socketPath), undo);
  }

  /** Like call(), but a not-found (or already-done conflict) counts as success. */
  private async idempotent(action: string, fn: () => Promise<unknown>, alsoIgnore: Array<'conflict'> = []): Promise<void> {
    try {
      await this.call(action, fn);
    } catch (err) {
      if (err instanceof EngineError && (err.kind === 'not-found' || alsoIgnore.includes(err.kind as 'conflict'))) return;
      throw err;
    }
  }

  /** Within timeouts.callMs: a hung engine is one that does not answer. */
  async ping(): Promise<void> {
    await this.bounded('answer a ping', () => this.docker.ping());
  }

  /** The engine's data directory (DockerRootDir), for the disk budget. */
  async info(): Promise<{ dockerRootDir: string | undefined }> {
    const info = await this.call('report its configuration', () => this.docker.info()) as { DockerRootDir?: string };
    return { dockerRootDir: info.DockerRootDir };
  }

  async version(): Promise<{ version: string; apiVersion: string }> {
    const v = await this.call('report its version', () => this.docker.version());
    return { version: v.Version, apiVersion: v.ApiVersion };
  }

  // --- containers -------------------------------------------------------------------------

  /**
   * Creates a container labelled for `owner`; returns its id. The anonymous volumes it would
   * get (its image's VOLUME lines, Config.Volumes) are created labelled for `owner` too.
   */
  async createContainer(options: ContainerCreateOptions, owner: Owner): Promise<string> {
    const labels = { ...options.Labels, ...ownerLabels(owner) };
    const mounts = await this.labelledVolumeMounts(options, owner);
    const hostConfig = mounts.length ? { ...options.HostConfig, Mounts: [...(options.HostConfig?.Mounts ?? []), ...mounts] } : options.HostConfig;
    // A container the engine creates after the worker stopped waiting is removed once it answers.
    const container = await this.bounded(`create a container from ${options.Image ?? 'no image'}`, () =>
      this.docker.createContainer({ ...options, Labels: labels, ...(hostConfig ? { HostConfig: hostConfig } : {}) }),
    (late) => this.removeContainer(late.id));
    return container.id;
  }

  /**
   * Volume mounts (no source: the engine names them, and removes them with the container)
   * with `owner`'s labels, for every volume path of the image and of Config.Volumes that no
   * bind, mount or tmpfs of `options` already covers.
   */
  private async labelledVolumeMounts(options: ContainerCreateOptions, owner: Owner): Promise<Dockerode.MountSettings[]> {
    const wanted = new Set(Object.keys(options.Volumes ?? {}));
    if (options.Image) {
      // A missing image is create's error to report; an engine that does not answer is not.
      const image = await this.inspectImage(options.Image).catch((err: unknown) => {
        if (err instanceof EngineError && err.kind === 'unreachable') throw err;
        return undefined;
      });
      for (const target of Object.keys(image?.Config?.Volumes ?? {})) wanted.add(target);
    }
    if (wanted.size === 0) return [];
    const normal = (p: string) => path.posix.normalize(p).replace(/(.)\/+$/, '$1');
    const host = options.HostConfig ?? {};
    const covered = new Set([
      ...(host.Binds ?? []).map((b) => b.split(':')[1]).filter((t): t is string => t !== undefined),
      ...(host.Mounts ?? []).map((m) => m.Target),
      ...Object.keys(host.Tmpfs ?? {}),
    ].map(normal));
    const labels = { ...ownerLabels(owner), [LABEL_ANONYMOUS_VOLUME]: 'true' };
    return [...new Set([...wanted].map(normal))].filter((t) => !covered.has(t))
      // No Source: an anonymous volume, which the engine names and removes with the container.
      .map((Target) => ({ Type: 'volume', Target, VolumeOptions: { Labels: labels } }) as unknown as Dockerode.MountSettings);
  }

  /**
   * Starts a created container, within timeouts.callMs (a hung engine must not hold the run:
   * the run's cleanup removes the container, once the engine answers if need be).
   */
  async startContainer(id: string): Promise<void> {
    await this.bounded(`start container ${id}`, () => this.docker.getContainer(id).start());
  }

  /** Waits for the container to stop; reports its exit code and whether the OOM killer hit it. */
  async waitContainer(id: string): Promise<ExitStatus> {
    const result = (await this.call(`wait for container ${id}`, () => this.docker.getContainer(id).wait())) as { StatusCode: number };
    const info = await this.inspectContainer(id);
    return { exitCode: result.StatusCode, oomKilled: info.State.OOMKilled === true };
  }

  /**
   * Whether the container was stopped through the engine (a `stop` event: the engine shutting
   * down or restarting without live-restore, or someone's `docker stop`) since `since`, looking
   * up to `lookAheadMs` past now (the engine logs `stop` just after `die`). The worker itself
   * never stops a container, it kills it. An engine that stops answering meanwhile counts as
   * yes: it went away.
   */
  async stoppedThroughEngine(id: string, since: Date, lookAheadMs = 2000): Promise<boolean> {
    let stream: Readable;
    try {
      stream = await this.call('list its events', () => this.docker.getEvents({
        since: Math.floor(since.getTime() / 1000) - 1, until: Math.ceil((Date.now() + lookAheadMs) / 1000),
        filters: { type: ['container'], container: [id], event: ['stop'] },
      })) as unknown as Readable;
    } catch (err) {
      if (err instanceof EngineError && err.kind === 'unreachable') return true;
      throw err;
    }
    try {
      for await (const event of readJsonLines<{ Action?: string }>(stream)) {
        if (event.Action === 'stop') return true;
      }
      return false;
    } catch {
      return true; // the event stream broke off: the engine went away
    } finally {
      stream.destroy();
    }
  }

  /** Sends a signal (default SIGKILL); a container that is gone or not running is fine. */
  async killContainer(id: string, signal = 'SIGKILL'): Promise<void> {
    await this.idempotent(`kill container ${id}`, () => this.docker.getContainer(id).kill({ signal }), ['conflict']);
  }

  /** Waits (polling inspect) until the container is gone; past `ms` it is an error saying so. */
  private async untilContainerGone(id: string, ms: number): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      try {
        await this.inspectContainer(id);
      } catch (err) {
        if (err instanceof EngineError && err.kind === 'not-found') return;
        throw err;
      }
      if (Date.now() >= end) throw new EngineError('conflict', `The Docker engine was still removing container ${id} ${Math.round(ms / 1000)} seconds after it said a removal was in progress.`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /**
   * Removes a container (running or not) with its anonymous volumes; a missing one is fine.
   * A labelled anonymous volume the engine kept (one it could not remove) is removed after
   * the container when it can be; else the disk budget collects it later as dangling.
   */
  async removeContainer(id: string): Promise<void> {
    let volumes: string[] = [];
    try {
      const info = await this.inspectContainer(id);
      volumes = (info.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name!);
    } catch (err) {
      if (!(err instanceof EngineError && err.kind === 'not-found')) throw err;
      return;
    }
    try {
      await this.call(`remove container ${id}`, () => this.docker.getContainer(id).remove({ force: true, v: true }));
    } catch (err) {
      if (err instanceof EngineError && err.kind === 'not-found') return;
      if (!(err instanceof EngineError && err.kind === 'conflict')) throw err;
      // "removal already in progress": an earlier request (one this worker stopped waiting for,
      // or an earlier process's) is removing it. Done is when it is gone, not when it is asked.
      await this.untilContainerGone(id, REMOVAL_IN_PROGRESS_WAIT_MS);
    }
    for (const name of volumes) {
      try {
        const volume = await this.call(`inspect volume ${name}`, () => this.docker.getVolume(name).inspect()) as { Labels?: Record<string, string> | null };
        if (!isOwned(volume.Labels) || volume.Labels?.[LABEL_ANONYMOUS_VOLUME] !== 'true') continue;
        await this.idempotent(`remove volume ${name}`, () => this.docker.getVolume(name).remove(), ['conflict']);
      } catch (err) {
        if (err instanceof EngineError && err.kind === 'not-found') continue; // removed with the container, as usual
        throw err;
      }
    }
  }

  async inspectContainer(id: string): Promise<ContainerInspectInfo> {
    return this.call(`inspect container ${id}`, () => this.docker.getContainer(id).inspect());
  }

  /**
   * The container's output as one byte stream (stdout and stderr merged; raw terminal output
   * with `tty`), attached before the container starts, as `docker run` does: every byte from the
   * first, and the stream ends once the engine has passed on the last one (it closes when the
   * container's output does). No earlier output is replayed (`logs: false`), so nothing repeats.
   */
  async attach(id: string, options: { tty: boolean }): Promise<Readable> {
    const container = this.docker.getContainer(id);
    const stream = (await this.bounded(`attach to container ${id}`, () =>
      container.attach({ stream: true, stdout: true, stderr: true, logs: false }), async (late) => { (late as unknown as Readable).destroy(); })) as unknown as Readable;
    return options.tty ? stream : this.demux(stream);
  }

  /**
   * Like attach(), but the output goes straight from the engine's socket into `sink` (one reused
   * read buffer, frames split in place without a TTY): what a task run reads its output with.
   * The sink's backpressure reaches the container.
   */
  attachOutput(id: string, options: { tty: boolean; sink: OutputSink; signal?: AbortSignal }): Promise<AttachedOutput> {
    return attachOutput(this.socketPath, id, { ...options, answerMs: this.timeouts.callMs });
  }

  /**
   * The container's output from its very start as one byte stream (stdout and stderr merged;
   * raw terminal output with `tty`), read from the engine's log. With `follow`, call it after
   * startContainer: the stream then runs until the container stops — but on a busy host the
   * engine may end a follow before the last lines written just before the exit (Docker 20.10),
   * so a task run reads its output through attach().
   */
  async logs(id: string, options: { tty: boolean; follow?: boolean }): Promise<Readable> {
    const container = this.docker.getContainer(id);
    const read = (): Promise<unknown> => options.follow
      ? container.logs({ follow: true, stdout: true, stderr: true })
      : container.logs({ follow: false, stdout: true, stderr: true });
    const stream = (await this.call(`read the logs of container ${id}`, read)) as Readable | Buffer;
    const readable = Buffer.isBuffer(stream) ? Readable.from([stream]) : stream;
    return options.tty ? readable : this.demux(readable);
  }

  /**
   * stdout and stderr out of the engine's frames (frames.ts; dockerode's demuxStream copies the
   * rest of its buffer for every frame: a whole non-TTY log read at once took minutes). The
   * source ends the output when it closes, and goes when the output is destroyed.
   */
  private demux(stream: Readable): Readable {
    const frames = new FrameSplitter();
    const take = (payload: Buffer) => out.push(payload);
    const out: Transform = new Transform({
      transform(chunk: Buffer, _encoding, done) { frames.push(chunk, take); done(); },
    });
    stream.on('error', (err) => out.destroy(toEngineError(err, 'stream container output', this.socketPath)));
    stream.on('close', () => { if (!out.writableEnded) out.end(); });
    out.on('close', () => stream.destroy());
    stream.pipe(out);
    return out;
  }

  /** A tar stream of `path` (file or directory) inside the container. */
  async getArchive(id: string, path: string): Promise<Readable> {
    try {
      return (await this.call(`read ${path} from container ${id}`, () =>
        this.docker.getContainer(id).getArchive({ path }),
      )) as unknown as Readable;
    } catch (err) {
      if (err instanceof EngineError && err.kind === 'not-found') {
        throw new EngineError('not-found', `${path} does not exist in the container`, { statusCode: 404, cause: err });
      }
      throw err;
    }
  }

  /** Runs a command in a running container. */
  async exec(id: string, options: { cmd: string[]; tty?: boolean; stdin?: boolean; env?: string[]; user?: string; workingDir?: string }): Promise<ExecSession> {
    const container = this.docker.getContainer(id);
    const tty = options.tty ?? false;
    const exec = await this.call(`start a command in container ${id}`, () =>
      container.exec({
        Cmd: options.cmd, Tty: tty, AttachStdin: options.stdin ?? false, AttachStdout: true, AttachStderr: true,
        Env: options.env, User: options.user, WorkingDir: options.workingDir,
      }),
    );
    const stream = (await this.call(`start a command in container ${id}`, () =>
      exec.start({ hijack: true, stdin: options.stdin ?? false, Tty: tty }),
    )) as Duplex;
    return {
      stream,
      resize: async (rows, columns) => { await this.call('resize a terminal', () => exec.resize({ h: rows, w: columns })); },
      exitCode: async () => {
        const info = await this.call('inspect a command', () => exec.inspect());
        return info.Running ? null : (info.ExitCode ?? null);
      },
    };
  }

  // --- what the worker owns ----------------------------------------------------------------

  /** Containers labelled as ours (by any worker, or by one workerId), running or not. */
  async listOwnedContainers(workerId?: string): Promise<OwnedContainer[]> {
    const list = await this.call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: ownerLabelFilters(workerId) } }),
    );
    return list.map((c) => ({
      id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), image: c.Image, state: c.State,
      created: new Date(c.Created * 1000), labels: c.Labels ?? {},
    }));
  }

  async listOwnedNetworks(workerId?: string): Promise<OwnedNetwork[]> {
    const list = await this.call('list networks', () => this.docker.listNetworks({ filters: { label: ownerLabelFilters(workerId) } }));
    return list.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} }));
  }

  async listOwnedVolumes(workerId?: string): Promise<OwnedVolume[]> {
    const result = await this.call('list volumes', () => this.docker.listVolumes({ filters: { label: ownerLabelFilters(workerId) } }));
    return (result.Volumes ?? []).map((v) => ({ name: v.Name, mountpoint: v.Mountpoint, labels: v.Labels ?? {} }));
  }

  // --- networks and volumes ----------------------------------------------------------------

  /** Creates a network labelled for `owner`; returns its id. */
  async createNetwork(name: string, owner: Owner, options: NetworkCreateOptions = {}): Promise<string> {
    const network = await this.bounded(`create network ${name}`, () =>
      this.docker.createNetwork({ ...options, Name: name, Labels: ownerLabels(owner) }),
    (late) => this.removeNetwork(late.id));
    return network.id;
  }

  /** The IPv4 subnet (CIDR) and gateway the engine gave a network. */
  async networkAddresses(idOrName: string): Promise<NetworkAddresses> {
    const info = await this.bounded(`inspect network ${idOrName}`, () => this.docker.getNetwork(idOrName).inspect()) as
      { IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> } };
    const v4 = (info.IPAM?.Config ?? []).find((c) => c.Subnet && c.Gateway && !c.Subnet.includes(':'));
    if (!v4) throw new EngineError('server', `network ${idOrName} has no IPv4 subnet with a gateway`);
    return { subnet: v4.Subnet!, gateway: v4.Gateway! };
  }

  /** Removes a network; a missing one is fine. */
  async removeNetwork(idOrName: string): Promise<void> {
    await this.idempotent(`remove network ${idOrName}`, () => this.docker.getNetwork(idOrName).remove());
  }

  /** Creates a named volume labelled for `owner`. */
  async createVolume(name: string, owner: Owner): Promise<void> {
    await this.bounded(`create volume ${name}`, () => this.docker.createVolume({ Name: name, Labels: ownerLabels(owner) }),
      () => this.removeVolume(name));
  }

  /** Removes a volume; a missing one is fine. */
  async removeVolume(name: string): Promise<void> {
    await this.idempotent(`remove volume ${name}`, () => this.docker.getVolume(name).remove());
  }

  // --- images ------------------------------------------------------------------------------

  /** The image's details, or undefined when no local image has that name, id or digest. */
  async inspectImage(name: string): Promise<ImageInspectInfo | undefined> {
    try {
      return await this.bounded(`inspect image ${name}`, () => this.docker.getImage(name).inspect());
    } catch (err) {
      if (err instanceof EngineError && err.kind === 'not-found') return undefined;
      throw err;
    }
  }

  async imageExists(name: string): Promise<boolean> {
    return (await this.inspectImage(name)) !== undefined;
  }

  /** Removes an image (or one of its tags); a missing one is fine. */
  async removeImage(name: string, options: { force?: boolean } = {}): Promise<void> {
    await this.idempotent(`remove image ${name}`, () => this.docker.getImage(name).remove({ force: options.force ?? false }));
  }

  /**
   * Commits a stopped (or running) container as the image `repository:tag`, labelled for
   * `owner` on top of the labels the container carries (and with `entrypoint` and `cmd`, if
   * given, in place of the container's); returns the image id.
   */
  async commitContainer(id: string, repository: string, tag: string, owner: Owner, options: { entrypoint?: string[]; cmd?: string[] } = {}): Promise<string> {
    const labels = Object.entries(ownerLabels(owner)).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ');
    // Dockerfile instructions applied to the image's config, one per line.
    // (Setting ENTRYPOINT drops CMD unless CMD is set too; `[""]` is Docker's "no entrypoint".)
    const changes = [`LABEL ${labels}`,
      ...(options.entrypoint ? [`ENTRYPOINT ${JSON.stringify(options.entrypoint)}`] : []),
      ...(options.cmd ? [`CMD ${JSON.stringify(options.cmd)}`] : [])];
    const result = await this.call(`commit container ${id}`, () =>
      this.docker.getContainer(id).commit({ repo: repository, tag, pause: true, changes: changes.join('\n') }),
    ) as { Id?: string; id?: string };
    const imageId = result.Id ?? result.id;
    if (!imageId) throw new EngineError('server', `Docker committed container ${id} but reported no image id`);
    return imageId;
  }

  /** A `docker save` tar stream of one image (by name or id), straight from the engine. */
  async saveImage(name: string): Promise<Readable> {
    return await this.call(`save image ${name}`, () => this.docker.getImage(name).get()) as unknown as Readable;
  }

  /** Images carrying the owner labels (of any worker, or of one workerId). */
  async listOwnedImages(workerId?: string): Promise<ImageSummary[]> {
    const list = await this.call('list images', () => this.docker.listImages({ all: false, filters: { label: ownerLabelFilters(workerId) } }));
    return list.map((i) => ({
      id: i.Id, repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
      repoDigests: (i.RepoDigests ?? []).filter((d) => !d.startsWith('<none>')),
      size: i.Size, created: new Date(i.Created * 1000), labels: i.Labels ?? {},
    }));
  }

  async tagImage(name: string, repository: string, tag: string): Promise<void> {
    await this.call(`tag image ${name} as ${repository}:${tag}`, () => this.docker.getImage(name).tag({ repo: repository, tag }));
  }

  async listImages(): Promise<ImageSummary[]> {
    const list = await this.call('list images', () => this.docker.listImages({ all: false }));
    return list.map((i) => ({
      id: i.Id, repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
      repoDigests: (i.RepoDigests ?? []).filter((d) => !d.startsWith('<none>')),
      size: i.Size, created: new Date(i.Created * 1000), labels: i.Labels ?? {},
    }));
  }

  /**
   * Loads a `docker save` tar stream; returns the names and ids the daemon reports. A load may
   * take long, but not without progress: the engine taking the archive's bytes, and each line
   * it reports (per layer, once it has the archive), count; timeouts.progressMs without any
   * (while it has bytes to take, or once it has all of them) ends the load as a hung engine.
   */
  async loadImage(tar: Readable): Promise<LoadedImages> {
    const action = 'load an image';
    const ms = this.timeouts.progressMs;
    let inputEnded = false;
    // Waiting on the engine: it has bytes it has not taken, or all of them.
    const clock = new StallClock(ms, () => engineStalledError(action, ms, this.socketPath),
      () => inputEnded || body.readableLength > 0 || body.writableLength > 0);
    // Each chunk is passed on only as fast as the engine takes them (the transform waits for
    // its reader): a chunk passed on is progress.
    const body = new Transform({ transform(chunk, _encoding, done) { clock.progress(); done(null, chunk); } });
    tar.once('end', () => { inputEnded = true; });
    tar.once('error', (err) => body.destroy(err));
    tar.pipe(body);
    clock.signal.addEventListener('abort', () => { tar.unpipe(body); body.destroy(); }, { once: true });
    const load = async (): Promise<LoadedImages> => {
      const output = (await this.call(action, () =>
        this.docker.loadImage(body, { quiet: false, abortSignal: clock.signal }),
      )) as unknown as Readable;
      clock.signal.addEventListener('abort', () => output.destroy(), { once: true });
      const loaded: LoadedImages = { names: [], ids: [] };
      for await (const event of readJsonLines<{ stream?: string; error?: string }>(output)) {
        clock.progress();
        if (event.error) throw new EngineError('bad-request', `Docker could not load the image: ${event.error.trim()}`, { detail: event.error.trim() });
        for (const line of (event.stream ?? '').split('\n')) {
          const id = /^Loaded image ID: (\S+)/.exec(line);
          const name = /^Loaded image: (\S+)/.exec(line);
          if (id) loaded.ids.push(id[1]!);
          else if (name) loaded.names.push(name[1]!);
        }
      }
      if (loaded.names.length === 0 && loaded.ids.length === 0) {
        throw new EngineError('bad-request', 'Docker loaded no image from the archive: is it a `docker save` tar?');
      }
      return loaded;
    };
    const loading = load();
    loading.catch(() => undefined);
    try {
      return await Promise.race([loading, clock.stalled]);
    } finally {
      clock.stop();
    }
  }

  /**
   * Pulls `repository` at `tagOrDigest` (a tag, or "sha256:..."). Each progress event goes to
   * `onEvent`. A failure reported inside the stream becomes an EngineError ('server') with the
   * daemon's message; classify it with pull-error.ts. A pull may take long, but not
   * timeouts.progressMs without an event: then it is abandoned as a hung engine.
   */
  async pull(repository: string, tagOrDigest: string, auth: RegistryAuth | undefined, onEvent: (event: PullEvent) => void, signal?: AbortSignal): Promise<void> {
    const name = tagOrDigest.includes(':') ? `${repository}@${tagOrDigest}` : `${repository}:${tagOrDigest}`;
    const action = `pull ${name}`;
    const ms = this.timeouts.progressMs;
    const clock = new StallClock(ms, () => engineStalledError(action, ms, this.socketPath));
    const pulling = (async () => {
      const output = (await this.call(action, () =>
        this.docker.createImage(auth ?? {}, { fromImage: repository, tag: tagOrDigest, abortSignal: signal ? AbortSignal.any([signal, clock.signal]) : clock.signal }),
      )) as unknown as Readable;
      clock.signal.addEventListener('abort', () => output.destroy(), { once: true });
      try {
        for await (const event of readJsonLines<PullEvent & { errorDetail?: { message?: string } }>(output)) {
          clock.progress();
          if (event.error) {
            const detail = (event.errorDetail?.message ?? event.error).trim();
            throw new EngineError('server', `Docker could not pull ${name}: ${detail}`, { detail });
          }
          onEvent(event);
        }
      } catch (err) {
        throw toEngineError(err, action, this.socketPath);
      }
    })();
    pulling.catch(() => undefined);
    try {
      await Promise.race([pulling, clock.stalled]);
    } finally {
      clock.stop();
    }
  }
}
