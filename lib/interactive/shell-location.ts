// Where a run's shell is: `private/docker-worker/shell.html` redirects to the page
// `<base>/shell.html`; the websocket is `<base>/socket` (ws, or wss for an https page).
export function socketUrlFromPageUrl(pageUrl: string): string {
  const url = new URL(pageUrl);
  if (!url.pathname.endsWith('/shell.html')) throw new Error(`${pageUrl} is not an interactive shell page`);
  url.pathname = url.pathname.replace(/shell\.html$/, 'socket');
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  return url.toString();
}

/** The socket URL with the command and tty query of docker-exec-websocket-server's clients. */
export function sessionUrl(socketUrl: string, command: readonly string[], tty: boolean): string {
  const url = new URL(socketUrl);
  url.searchParams.set('tty', tty ? 'true' : 'false');
  for (const part of command) url.searchParams.append('command', part);
  return url.toString();
}
