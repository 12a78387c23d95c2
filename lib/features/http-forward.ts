// Forwarding one HTTP request to another server, as the task proxies do: the body streamed
// (never buffered) both ways, connection-level headers dropped, the caller's Authorization
// replaced by the proxy's, and the answer (status, headers, body; redirects included) passed
// back unchanged.
import http from 'node:http';
import https from 'node:https';

/** Request and response headers that belong to one connection, not to the message. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade',
]);

/** Keep-alive agents of one proxy (destroy them when it closes). */
export class ForwardAgents {
  readonly http = new http.Agent({ keepAlive: true });
  readonly https = new https.Agent({ keepAlive: true });
  destroy(): void { this.http.destroy(); this.https.destroy(); }
}

export interface ForwardOptions {
  target: URL;
  /** The Authorization header to send (the caller's is never passed on). */
  authorization(target: URL, method: string): string;
  agents: ForwardAgents;
  /** Headers set on the request to the target (e.g. a default Content-Type), after the caller's. */
  defaultHeaders?(incoming: http.IncomingHttpHeaders): http.OutgoingHttpHeaders;
  /** A sentence for the caller when the target cannot be reached (502). */
  unreachable(target: URL, err: Error): string;
}

export function forward(req: http.IncomingMessage, res: http.ServerResponse, options: ForwardOptions): void {
  const { target } = options;
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (HOP_BY_HOP.has(name) || name === 'host' || name === 'authorization' || value === undefined) continue;
    headers[name] = value;
  }
  Object.assign(headers, options.defaultHeaders?.(req.headers));
  headers.authorization = options.authorization(target, req.method ?? 'GET');
  const secure = target.protocol === 'https:';
  const upstream = (secure ? https : http).request(target, { method: req.method, headers, agent: secure ? options.agents.https : options.agents.http });
  let answered = false;
  upstream.on('response', (answer) => {
    answered = true;
    for (const [name, value] of Object.entries(answer.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) res.setHeader(name, value);
    }
    res.writeHead(answer.statusCode ?? 502);
    answer.pipe(res, { end: false });
    answer.on('error', () => res.destroy());
    // An answer that came before the whole body (an error about the body) is ended only once
    // the caller has sent the rest, which is read and dropped: closing a connection the caller
    // is still writing to resets it, and the caller may then lose the answer.
    answer.on('end', () => {
      if (req.complete) return void res.end();
      req.unpipe(upstream);
      upstream.destroy();
      req.once('end', () => res.end());
      req.once('close', () => res.end());
      req.resume();
    });
  });
  upstream.on('error', (err) => {
    // The service may answer before it has read the whole body (an error about the body) and
    // close: the request side then breaks, but its answer still goes to the caller.
    if (answered) return void req.unpipe(upstream);
    if (res.headersSent) return void res.destroy();
    res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(options.unreachable(target, err));
  });
  res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
  req.pipe(upstream);
}

export function answerText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}
