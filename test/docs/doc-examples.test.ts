/**
 * Every ```ts and ```js block of README.md and docs/*.md runs as a test, as it is written: each runs as
 * a program of its own against the broker (`from 'warren'` pointed at the sources) and must exit with
 * status 0 within its time. Blocks run by another test are listed in COVERED_ELSEWHERE; a new block
 * fails here until it is run somewhere.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../..');

/** `file#heading` of blocks another test runs, and which. */
const COVERED_ELSEWHERE: Record<string, string> = {
  'README.md#Your first consumer': 'test/package/pack.test.ts (from the installed package, with the CLI)',
  'README.md#Publisher': 'test/client/docs-examples.test.ts',
  'README.md#Consumer': 'test/client/docs-examples.test.ts',
  'README.md#Async iterator': 'test/client/docs-examples.test.ts',
  'README.md#RPC': 'test/client/docs-examples.test.ts',
  'README.md#Declare options': 'test/client/docs-examples.test.ts',
  'README.md#Consumer control': 'test/client/docs-examples.test.ts',
  'README.md#Health, stats and logging': 'test/client/docs-examples.test.ts',
  'README.md#Metrics': 'test/client/docs-examples.test.ts',
  'README.md#Deadlines': 'test/client/docs-operator-examples.test.ts',
  'README.md#Credentials that change': 'test/client/docs-operator-examples.test.ts',
  'README.md#Bounded publishing': 'test/client/docs-operator-examples.test.ts',
  'README.md#Giving up': 'test/client/docs-operator-examples.test.ts',
};

interface Block {
  id: string;
  lang: string;
  code: string;
}

function blocksOf(file: string): Block[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: Block[] = [];
  const seen = new Map<string, number>();
  for (const m of text.matchAll(/```(ts|js)\n([\s\S]*?)```/g)) {
    const before = text.slice(0, m.index);
    const heading = [...before.matchAll(/^#{2,4} (.+)$/gm)].at(-1)?.[1] ?? '(top)';
    const n = (seen.get(heading) ?? 0) + 1;
    seen.set(heading, n);
    out.push({ id: `${file}#${heading}${n > 1 ? ` (${n})` : ''}`, lang: m[1]!, code: m[2]! });
  }
  return out;
}

const files = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const blocks = files.flatMap(blocksOf);
const dir = mkdtempSync(join(tmpdir(), 'warren-doc-examples-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the examples of the README and docs/', () => {
  test('every block is run: here or by the test named in COVERED_ELSEWHERE', () => {
    const ids = new Set(blocks.map((b) => b.id));
    for (const id of Object.keys(COVERED_ELSEWHERE)) assert.ok(ids.has(id), `${id} still exists`);
    assert.ok(blocks.filter((b) => !(b.id in COVERED_ELSEWHERE)).length >= 4);
  });

  for (const [i, block] of blocks.entries()) {
    if (block.id in COVERED_ELSEWHERE) continue;
    test(`runs as written: ${block.id}`, { timeout: 60_000 }, async () => {
      const file = join(dir, `example-${i}.${block.lang === 'ts' ? 'mts' : 'mjs'}`);
      const code = block.code
        .replaceAll("from 'warren/amqplib/callback_api'", `from '${join(root, 'src/amqplib/callback-api.ts')}'`)
        .replaceAll("from 'warren/amqplib'", `from '${join(root, 'src/amqplib/index.ts')}'`)
        .replaceAll("from 'warren'", `from '${join(root, 'src/index.ts')}'`);
      writeFileSync(file, code);
      const { status, output } = await new Promise<{ status: number | null; output: string }>((done) => {
        execFile(process.execPath, ['--import', 'tsx', file], { cwd: root, timeout: 50_000 }, (err, stdout, stderr) =>
          done({ status: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
        );
      });
      assert.equal(status, 0, `${block.id}:\n${output}`);
    });
  }
});
