/**
 * The examples of docs/robust-client.md are tests: each ```ts block runs as a program of its own
 * (with `from 'warren'` pointed at the sources) against the broker, and must exit with status 0.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
// The README's robust-client section: from its heading to the next second-level heading.
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const start = readme.indexOf('\n## The robust client\n');
const doc = readme.slice(start, readme.indexOf('\n## ', start + 1));
const dir = mkdtempSync(join(tmpdir(), 'warren-docs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const blocks = [...doc.matchAll(/^### (.+)\n[\s\S]*?```ts\n([\s\S]*?)```/gm)].map((m) => ({
  title: m[1]!,
  code: m[2]!,
}));

test('the document has its examples', () => {
  assert.deepEqual(
    blocks.map((b) => b.title),
    [
      'Publisher',
      'Consumer',
      'Async iterator',
      'RPC',
      'Declare options',
      'Consumer control',
      'Health, stats and logging',
      'Metrics',
    ],
  );
});

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
