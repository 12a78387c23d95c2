// `worker config`: every setting with its default, environment variable and meaning, as a
// markdown table (the README's table is this output).
import { describeConfig } from '../config/load.ts';

export async function config(_argv: string[]): Promise<number> {
  const rows = describeConfig();
  const out = ['| key | default | env | meaning |', '| --- | --- | --- | --- |'];
  for (const [key, def, env, doc] of rows) out.push(`| \`${key}\` | \`${def}\` | ${env ? `\`${env}\`` : ''} | ${doc} |`);
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}
