// Entry point of bin/worker: dispatches to one subcommand module.
const commands: Record<string, { load: () => Promise<(argv: string[]) => Promise<number>>; help: string }> = {
  start: { load: async () => (await import('./start.ts')).start, help: 'run the worker (with the embedded deployment when no rootUrl is set)' },
  submit: { load: async () => (await import('./submit.ts')).submit, help: 'create a task from a YAML or JSON file' },
  config: { load: async () => (await import('./config.ts')).config, help: 'print every configuration key (markdown table)' },
  serve: { load: async () => (await import('./serve.ts')).serve, help: 'serve the embedded Taskcluster deployment' },
  keys: { load: async () => (await import('./keys.ts')).keys, help: "create the worker's keys once and print the public keys" },
  shell: { load: async () => (await import('./shell.ts')).shell, help: "open a shell in an interactive task's container (private/docker-worker/shell.html)" },
  'encrypt-env': { load: async () => (await import('./encrypt-env.ts')).encryptEnv, help: "encrypt an env variable for a worker's public key (payload.encryptedEnv)" },
};

function printHelp(): void {
  process.stdout.write('usage: worker <command> [options]\n\n');
  for (const [name, c] of Object.entries(commands)) process.stdout.write(`  ${name.padEnd(11)} ${c.help}\n`);
  process.stdout.write(`  ${'--version'.padEnd(11)} print the version and the commit it was built from\n`);
}

async function main(): Promise<number> {
  const [name, ...rest] = process.argv.slice(2);
  if (name === '--version' || name === 'version') {
    const { versionLine } = await import('../build/build-info.ts');
    process.stdout.write(`${versionLine()}\n`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') { printHelp(); return name ? 0 : 2; }
  const command = commands[name];
  if (!command) { process.stderr.write(`worker: unknown command ${name}\n`); printHelp(); return 2; }
  try {
    return await (await command.load())(rest);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code?.startsWith('ERR_PARSE_ARGS') || e.name === 'ConfigError' || e.name === 'WorkerKeyError') { process.stderr.write(`worker ${name}: ${e.message}\n`); return 2; }
    process.stderr.write(`worker ${name}: ${e.stack ?? e.message}\n`);
    return 1;
  }
}

process.exitCode = await main();
