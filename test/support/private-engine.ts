// A private Docker engine for tests that stop, restart or withhold the engine (test/faults/):
// a second `dockerd` with everything of its own under one temporary directory — data root,
// exec root (and so its own containerd, or its own namespaces in a system one), pid file, unix
// socket — and its own bridge on an unused private /24, made with iproute2 and named
// `dwf-<hex>`. It touches no iptables rules (--iptables=false: the main engine's chains stay as
// they are) and never the main engine at /var/run/docker.sock, whose test images are copied in
// (docker save | docker load).
// remove() stops the daemon, deletes the bridge and the directory.
//
// Needs root (dockerd, ip link); callers skip with `PrivateEngine.unavailable()` as the reason.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine } from '../../lib/docker/engine.ts';

const have = (cmd: string) => { try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; } };

export class PrivateEngine {
  readonly dir: string;
  readonly socketPath: string;
  readonly bridge: string;
  readonly subnet: string;
  private readonly logFile: string;
  private daemon: ChildProcess | undefined;

  private constructor(dir: string, bridge: string, subnet: string) {
    this.dir = dir; this.bridge = bridge; this.subnet = subnet;
    this.socketPath = path.join(dir, 'docker.sock');
    this.logFile = path.join(dir, 'dockerd.log');
  }

  /** Why a private engine cannot be made here, or undefined when it can. */
  static unavailable(): string | undefined {
    if (process.getuid?.() !== 0) return 'needs root to run a second dockerd and make its bridge';
    if (!have('dockerd')) return 'dockerd is not installed (make docker)';
    if (!have('ip')) return 'ip (iproute2) is not installed (make host-tools)';
    return undefined;
  }

  /** Makes the bridge and the directory, starts the daemon, loads `images` from the main engine. */
  static async create(images: string[]): Promise<PrivateEngine> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dw-engine-'));
    const hex = randomBytes(3).toString('hex');
    const bridge = `dwf-${hex}`;
    const subnet = unusedSubnet();
    const engine = new PrivateEngine(dir, bridge, subnet);
    try {
      execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
      execFileSync('ip', ['addr', 'add', `${subnet.replace(/\.0\/24$/, '.1')}/24`, 'dev', bridge]);
      execFileSync('ip', ['link', 'set', bridge, 'up']);
      await engine.start();
      for (const image of images) {
        execFileSync('sh', ['-c', `docker save "$1" | docker -H "unix://$2" load -q`, 'sh', image, engine.socketPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      }
    } catch (err) {
      await engine.remove();
      throw err;
    }
    return engine;
  }

  /** An Engine (the worker's adapter) on this daemon. */
  engine(): Engine { return new Engine({ socketPath: this.socketPath }); }

  get running(): boolean { return this.daemon !== undefined; }

  /** Starts the daemon and waits (up to 60 s) until it answers. */
  async start(): Promise<void> {
    if (this.daemon) return;
    const log = openSync(this.logFile, 'a');
    const child = spawn('dockerd', [
      '--data-root', path.join(this.dir, 'data'), '--exec-root', path.join(this.dir, 'exec'),
      '--pidfile', path.join(this.dir, 'dockerd.pid'), '-H', `unix://${this.socketPath}`,
      '--bridge', this.bridge, '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false',
      '--userland-proxy=false', '--storage-driver', 'overlay2', '--cgroup-parent', `/${this.bridge}`,
      // Where a system containerd runs (Debian's docker.io under systemd), dockerd uses it
      // rather than its own: namespaces of its own keep the main engine's containers apart.
      '--containerd-namespace', this.bridge, '--containerd-plugins-namespace', `${this.bridge}-plugins`,
    ], { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    this.daemon = child;
    child.once('exit', () => { if (this.daemon === child) this.daemon = undefined; });
    const engine = this.engine();
    const end = Date.now() + 60_000;
    for (;;) {
      if (!this.daemon) throw new Error(`the private dockerd exited at start:\n${this.logTail()}`);
      try { await engine.ping(); return; } catch { /* not yet */ }
      if (Date.now() > end) throw new Error(`the private dockerd did not answer within 60 s:\n${this.logTail()}`);
      await sleep(200);
    }
  }

  /** Stops the daemon (SIGTERM, as an operator's restart does) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.daemon;
    if (!child) return;
    child.kill('SIGCONT'); // a frozen daemon would never act on the SIGTERM
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
    this.daemon = undefined;
  }

  /** Freezes the daemon (SIGSTOP): its socket still takes connections, nothing answers. */
  freeze(): void { this.daemon?.kill('SIGSTOP'); }

  /** Lets a frozen daemon run on (SIGCONT). */
  thaw(): void { this.daemon?.kill('SIGCONT'); }

  /** The last lines the daemon logged. */
  logTail(lines = 20): string {
    try { return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return ''; }
  }

  /** Stops the daemon, deletes the bridge and everything under the directory. */
  async remove(): Promise<void> {
    await this.stop();
    try { execFileSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore' }); } catch { /* never made */ }
    // The daemon unmounts what it mounted on a clean stop; anything left mounted below the
    // directory (a killed daemon) is unmounted before the removal.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m): m is string => !!m && m.startsWith(this.dir + '/'));
    for (const m of mounts.sort().reverse()) { try { execFileSync('umount', ['-l', m], { stdio: 'ignore' }); } catch { /* gone */ } }
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A 10.x.y.0/24 no route of this host covers. */
function unusedSubnet(): string {
  const routes = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  for (let i = 0; i < 50; i++) {
    const [a, b] = [200 + (randomBytes(1)[0]! % 50), randomBytes(1)[0]! % 250];
    const subnet = `10.${a}.${b}.0/24`;
    if (!routes.includes(`10.${a}.${b}.`) && !routes.includes(`10.${a}.0.0/16`) && !/\b10\.0\.0\.0\/8\b/.test(routes)) return subnet;
  }
  throw new Error('no unused 10.x.y.0/24 found for the private engine\'s bridge');
}
