// Content type and content encoding of an artifact, from its file name. A small built-in table
// of what tasks commonly upload (the `mime-types` package would be the drop-in replacement if
// a longer list is ever needed). Unknown names are `application/octet-stream`.
import path from 'node:path';

const TYPES: Record<string, string> = {
  txt: 'text/plain', log: 'text/plain', text: 'text/plain', md: 'text/markdown', csv: 'text/csv',
  html: 'text/html', htm: 'text/html', css: 'text/css', xml: 'application/xml', svg: 'image/svg+xml',
  js: 'application/javascript', mjs: 'application/javascript', json: 'application/json', map: 'application/json',
  yml: 'text/yaml', yaml: 'text/yaml', toml: 'application/toml', ini: 'text/plain', sh: 'application/x-sh',
  py: 'text/x-python', diff: 'text/x-diff', patch: 'text/x-diff', asc: 'application/pgp-signature',
  sig: 'application/pgp-signature', pem: 'application/x-pem-file', wasm: 'application/wasm', pdf: 'application/pdf',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', ico: 'image/x-icon',
  bmp: 'image/bmp', mp4: 'video/mp4', webm: 'video/webm', ogg: 'audio/ogg', mp3: 'audio/mpeg', woff: 'font/woff',
  woff2: 'font/woff2', gz: 'application/gzip', tgz: 'application/gzip', zip: 'application/zip',
  bz2: 'application/x-bzip2', tbz: 'application/x-bzip2', xz: 'application/x-xz', txz: 'application/x-xz',
  zst: 'application/zstd', lz4: 'application/x-lz4', '7z': 'application/x-7z-compressed', tar: 'application/x-tar',
  jar: 'application/java-archive', whl: 'application/zip', apk: 'application/vnd.android.package-archive',
  dmg: 'application/x-apple-diskimage', deb: 'application/vnd.debian.binary-package', rpm: 'application/x-rpm',
  msi: 'application/x-msi', exe: 'application/x-msdownload', bin: 'application/octet-stream',
};

/** Extensions whose contents are already compressed: gzipping them again only costs time. */
const COMPRESSED = new Set([
  'gz', 'tgz', 'zip', 'whl', 'jar', 'apk', 'bz2', 'tbz', 'xz', 'txz', 'zst', 'lz4', '7z', 'dmg', 'deb', 'rpm',
  'png', 'jpg', 'jpeg', 'gif', 'webp', 'mp4', 'webm', 'ogg', 'mp3', 'woff', 'woff2', 'swf', 'flv',
]);

function extensionOf(name: string): string {
  return path.posix.extname(name).slice(1).toLowerCase();
}

export function contentTypeFor(name: string): string {
  return TYPES[extensionOf(name)] ?? 'application/octet-stream';
}

/** Whether an artifact is worth sending with `Content-Encoding: gzip`. */
export function worthGzipping(name: string): boolean {
  return !COMPRESSED.has(extensionOf(name));
}
