// The shell page: xterm.js (served by the same worker, beside the page) connected to the
// session's websocket next to it (`socket`, same secret path), a terminal that fills the window
// and follows its size. Needs nothing from anywhere else.
export interface ShellPageOptions {
  title: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function shellPage({ title }: ShellPageOptions): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="xterm.css">
<style>
  html, body { margin: 0; height: 100%; background: #1e1e1e; color: #ddd; font-family: sans-serif; }
  body { display: flex; flex-direction: column; }
  header { padding: 6px 10px; font-size: 13px; border-bottom: 1px solid #333; display: flex; gap: 1em; }
  header b { color: #fff; }
  #status { margin-left: auto; color: #9c9; }
  #terminal { flex: 1; padding: 4px; overflow: hidden; }
  #measure { position: absolute; visibility: hidden; font: 14px monospace; white-space: pre; }
</style>
</head>
<body>
<header><b>${escapeHtml(title)}</b><span>a shell in the task's container</span><span id="status">connecting…</span></header>
<div id="terminal"></div>
<span id="measure">0123456789</span>
<script src="xterm.js"></script>
<script>
(() => {
  const MSG = { stdin: 0, stdout: 1, stderr: 2, resize: 50, resume: 100, pause: 101, end: 102, stopped: 200, shutdown: 201, error: 202 };
  const status = document.getElementById('status');
  const box = document.getElementById('terminal');
  const term = new Terminal({ cursorBlink: true, fontSize: 14, fontFamily: 'monospace', theme: { background: '#1e1e1e' } });
  term.open(box);
  const url = new URL('socket', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = new URLSearchParams({ tty: 'true', command: 'sh' }).toString();
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const encoder = new TextEncoder();
  const send = (code, bytes) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const out = new Uint8Array(1 + (bytes ? bytes.length : 0));
    out[0] = code;
    if (bytes) out.set(bytes, 1);
    ws.send(out);
  };
  const sendSize = () => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint16(0, term.rows, true);
    new DataView(b.buffer).setUint16(2, term.cols, true);
    send(MSG.resize, b);
  };
  const fit = () => {
    const cell = document.getElementById('measure').getBoundingClientRect();
    const cols = Math.max(20, Math.floor((box.clientWidth - 8) / (cell.width / 10)));
    const rows = Math.max(5, Math.floor((box.clientHeight - 8) / cell.height));
    if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
  };
  term.onResize(sendSize);
  term.onData((data) => send(MSG.stdin, encoder.encode(data)));
  window.addEventListener('resize', fit);
  ws.onopen = () => { status.textContent = 'connected'; fit(); sendSize(); term.focus(); };
  ws.onmessage = (event) => {
    const data = new Uint8Array(event.data);
    const body = data.subarray(1);
    switch (data[0]) {
      case MSG.stdout: case MSG.stderr: term.write(body); break;
      case MSG.stopped: status.textContent = 'the shell exited with code ' + body[0]; break;
      case MSG.shutdown: status.textContent = 'the worker closed the shell (the task ended)'; break;
      case MSG.error: status.textContent = 'error: ' + new TextDecoder().decode(body); term.write('\\r\\n' + new TextDecoder().decode(body) + '\\r\\n'); break;
      default: break;
    }
  };
  ws.onclose = () => { if (status.textContent === 'connected' || status.textContent.startsWith('connecting')) status.textContent = 'disconnected'; };
})();
</script>
</body>
</html>
`;
}
