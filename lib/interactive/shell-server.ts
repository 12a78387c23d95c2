// The interactive shell of one task run: an HTTP (or HTTPS, with a certificate) server on a free
// port whose every path starts with an unguessable secret. It serves the shell page
// (`<base>/shell.html`, xterm.js and its stylesheet, all from the worker: the page needs nothing
// else) and the websocket (`<base>/socket`) speaking docker-exec-websocket-server's protocol.
// At most MAX_SESSIONS sessions at once; the next one is told so and closed.
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Engine } from '../docker/engine.ts';
import { MSG, execRequestFrom, frame } from './exec-protocol.ts';
import { ShellSession } from './exec-session.ts';
import { shellPage } from './shell-page.ts';

export const MAX_SESSIONS = 10;

export interface ShellServerOptions {
  engine: Engine;
  containerId: string;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Host name put in the URLs handed out (default: the bound address). */
  publicHost?: string;
  /** PEM certificate and key: serve HTTPS and WSS. */
  tls?: { cert: string; key: string };
  /** Told whenever the number of open sessions changes. */
  onSessions?(open: number): void;
  /** Shown on the page. */
  title?: string;
}

const require = createRequire(import.meta.url);
// @xterm/xterm's main file is <package>/lib/xterm.js.
const XTERM_DIR = path.dirname(path.dirname(require.resolve('@xterm/xterm')));
const ASSETS: Record<string, { file: string; type: string }> = {
  'xterm.js': { file: path.join(XTERM_DIR, 'lib', 'xterm.js'), type: 'application/javascript; charset=utf-8' },
  'xterm.css': { file: path.join(XTERM_DIR, 'css', 'xterm.css'), type: 'text/css; charset=utf-8' },
};

export class ShellServer {
  readonly #server: http.Server;
  readonly #wss: WebSocketServer;
  readonly #secret: string;
  readonly #options: ShellServerOptions;
  readonly #sessions = new Set<ShellSession>();
  #baseUrl = '';
  #closing = false;

  private constructor(server: http.Server, options: ShellServerOptions) {
    this.#server = server;
    this.#options = options;
    this.#secret = crypto.randomBytes(24).toString('base64url');
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
    server.on('request', (req, res) => void this.#page(req, res));
    server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== `/${this.#secret}/socket` || this.#closing) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#connected(ws, url));
    });
  }

  static async start(options: ShellServerOptions): Promise<ShellServer> {
    const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }) : http.createServer();
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => { server.off('error', reject); resolve(); });
    });
    const shell = new ShellServer(server, options);
    const { port } = server.address() as AddressInfo;
    const shown = options.publicHost || (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host);
    shell.#baseUrl = `${options.tls ? 'https' : 'http'}://${shown}:${port}/${shell.#secret}`;
    return shell;
  }

  /** The page a person opens (private/docker-worker/shell.html redirects here). */
  get pageUrl(): string { return `${this.#baseUrl}/shell.html`; }
  /** The websocket clients connect to (with `?tty=true&command=sh`). */
  get socketUrl(): string { return `${this.#baseUrl.replace(/^http/, 'ws')}/socket`; }
  get openSessions(): number { return this.#sessions.size; }

  #connected(ws: WebSocket, url: URL): void {
    if (this.#sessions.size >= MAX_SESSIONS) {
      ws.send(frame(MSG.error, `Too many sessions active! At most ${MAX_SESSIONS} shells may be open at once.`));
      ws.close(1013, 'too many sessions');
      return;
    }
    const session = new ShellSession(ws, execRequestFrom(url));
    this.#sessions.add(session);
    this.#options.onSessions?.(this.#sessions.size);
    void session.closed.then(() => {
      this.#sessions.delete(session);
      this.#options.onSessions?.(this.#sessions.size);
    });
    void session.start(this.#options.engine, this.#options.containerId);
  }

  async #page(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const prefix = `/${this.#secret}/`;
    const name = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : undefined;
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (name === 'shell.html') {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(shellPage({ title: this.#options.title ?? 'Interactive shell' }));
      return;
    }
    const asset = name !== undefined ? ASSETS[name] : undefined;
    if (!asset) { res.statusCode = 404; res.end('Not found\n'); return; }
    try {
      const body = await readFile(asset.file);
      res.setHeader('Content-Type', asset.type);
      res.end(body);
    } catch {
      res.statusCode = 500;
      res.end('The terminal could not be loaded\n');
    }
  }

  /** Ends every session (told `shutdown`) and stops listening. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const session of this.#sessions) session.shutdown();
    await Promise.all([...this.#sessions].map((s) => s.closed));
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
