/**
 * The README's examples as tests: the ```ts block under each `###` heading of one `##` section, each
 * run as a program of its own (with `from 'warren'` pointed at the sources) against the broker.
 *
 *   const section = readmeSection('The robust client');
 *   test('the section has its examples', () => assert.deepEqual(section.blocks.map((b) => b.title), [...]));
 *   runExamples(section.blocks, 'warren-docs-');
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../..');

export interface Example {
  title: string;
  code: string;
}

/** The section `## heading` of README.md: where it starts (-1 if missing) and its examples. */
export function readmeSection(heading: string): { start: number; blocks: Example[] } {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  // From its heading to the next second-level heading.
  const start = readme.indexOf(`\n## ${heading}\n`);
  const doc = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const blocks = [...doc.matchAll(/^### (.+)\n[\s\S]*?```ts\n([\s\S]*?)```/gm)].map((m) => ({
    title: m[1]!,
    code: m[2]!,
  }));
  return { start, blocks };
}

/** One test per example: it runs as its own program, from a scratch folder, and must exit with status 0. */
export function runExamples(blocks: Example[], dirPrefix: string): void {
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  for (const { title, code } of blocks) {
    test(`docs example runs: ${title}`, { timeout: 60_000 }, async () => {
      const file = join(dir, `${title.replace(/\W+/g, '-').toLowerCase()}.mts`);
      writeFileSync(file, code.replaceAll("from 'warren'", `from '${join(root, 'src/index.ts')}'`));
      const { code: status, output } = await new Promise<{ code: number | null; output: string }>((done) => {
        execFile(process.execPath, ['--import', 'tsx', file], { cwd: root, timeout: 50_000 }, (err, stdout, stderr) =>
          done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
        );
      });
      assert.equal(status, 0, output);
    });
  }
}
