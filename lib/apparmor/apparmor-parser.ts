// The host side of AppArmor: whether the kernel enforces it, and `apparmor_parser` to check a
// profile's syntax (-Q: parse and compile, load nothing), load it (-r: add or replace) and
// remove it (-R). The profile text goes on stdin, so no file is left behind. Loading and
// removing need root (CAP_MAC_ADMIN) and a kernel with AppArmor enabled.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export const APPARMOR_ENABLED_FILE = '/sys/module/apparmor/parameters/enabled';

/** True when the kernel has AppArmor enabled ("Y" in /sys/module/apparmor/parameters/enabled). */
export async function apparmorEnabled(file = APPARMOR_ENABLED_FILE): Promise<boolean> {
  try {
    return (await readFile(file, 'utf8')).trim() === 'Y';
  } catch {
    return false; // no AppArmor module at all
  }
}

export class AppArmorError extends Error {
  override name = 'AppArmorError';
}

export interface AppArmorParserOptions {
  /** The apparmor_parser program (default: found on PATH, then /usr/sbin and /sbin). */
  binary?: string;
  /** Give up on a parser run after this long (default 30 s). */
  timeoutMs?: number;
}

export class AppArmorParser {
  readonly #binary: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: AppArmorParserOptions = {}) {
    this.#binary = options.binary;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Checks the profile's syntax without loading it; rejects with the parser's message. */
  async check(profile: string): Promise<void> {
    await this.#run(['-Q', '-K'], profile, 'check');
  }

  /** Loads the profile into the kernel, replacing one of the same name. */
  async load(profile: string): Promise<void> {
    await this.#run(['-r', '-K'], profile, 'load');
  }

  /** Removes the profile (by the name in its text) from the kernel. */
  async remove(profile: string): Promise<void> {
    await this.#run(['-R', '-K'], profile, 'remove');
  }

  async #run(args: string[], profile: string, verb: string): Promise<void> {
    const name = /^\s*profile\s+(\S+)/m.exec(profile)?.[1] ?? 'the profile';
    const binaries = this.#binary ? [this.#binary] : ['apparmor_parser', '/usr/sbin/apparmor_parser', '/sbin/apparmor_parser'];
    for (const binary of binaries) {
      const result = await new Promise<{ missing: boolean; error?: string }>((resolve) => {
        const child = execFile(binary, args, { timeout: this.#timeoutMs, maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
          if (!err) return resolve({ missing: false });
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return resolve({ missing: true });
          // The parser's own lines, minus its warnings about the cache on kernels without AppArmor.
          const lines = stderr.split('\n').filter((l) => l.trim() && !/^Cache read\/write disabled/.test(l));
          resolve({ missing: false, error: lines.join(' ').trim() || err.message });
        });
        child.stdin?.on('error', () => undefined); // the parser may exit before reading everything
        child.stdin?.end(profile);
      });
      if (result.missing) continue;
      if (result.error !== undefined) throw new AppArmorError(`apparmor_parser could not ${verb} AppArmor profile ${name}: ${result.error}`);
      return;
    }
    throw new AppArmorError(`apparmor_parser is not installed, so AppArmor profile ${name} cannot be ${verb === 'check' ? 'checked' : verb === 'load' ? 'loaded' : 'removed'} (Debian package: apparmor)`);
  }
}
