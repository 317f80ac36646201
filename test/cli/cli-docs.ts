/**
 * Keeps the command reference in docs/cli.md equal to what `warren <command> --help` prints.
 *
 *   node --import tsx test/cli/cli-docs.ts --write    rewrites the generated part of docs/cli.md
 *
 * cli-docs.test.ts fails when the two differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatHelp } from '../../src/cli/args.js';
import { COMMANDS, topHelp } from '../../src/cli/run.js';

export const DOC = join(resolve(fileURLToPath(import.meta.url), '../../..'), 'docs/cli.md');
const BEGIN =
  '<!-- BEGIN GENERATED from `warren --help`: edit src/cli, then run node --import tsx test/cli/cli-docs.ts --write -->';
const END = '<!-- END GENERATED -->';

/** The generated reference: the top-level help, then each command's help. */
export function reference(): string {
  const parts = ['### warren --help', '', '```text', topHelp().trimEnd(), '```'];
  for (const [name, cmd] of COMMANDS) {
    parts.push('', `### warren ${name}`, '', '```text', formatHelp(cmd.spec).trimEnd(), '```');
  }
  return parts.join('\n');
}

/** docs/cli.md with its generated part brought up to date. */
export function updated(current: string): string {
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/cli.md lacks the ${BEGIN} ... ${END} markers`);
  return `${current.slice(0, start)}${BEGIN}\n\n${reference()}\n\n${current.slice(end)}`;
}

if (process.argv.includes('--write')) {
  writeFileSync(DOC, updated(readFileSync(DOC, 'utf8')));
  console.log(`updated ${DOC}`);
}
