#!/usr/bin/env node
// Runs the test suite with node's own test runner (TypeScript through tsx).
//
//   npm test                      everything
//   npm test -- test/unit         only files under the given paths
//
// Files under test/serial/, test/fault/ and test/cluster/ change broker-wide state (memory alarm,
// extra nodes, cut connections) or need the CPU to themselves, so they run one file at a time after the
// rest, which runs two files at a time. Each group prints node's own summary; the last line sums both.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../..');
process.chdir(root);

const ensure = spawnSync(process.execPath, ['scripts/ensure-broker.mjs'], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);

function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(walk(path));
    else if (/\.test\.ts$/.test(name)) out.push(relative(root, path));
  }
  return out;
}

const filters = process.argv.slice(2).map((p) => relative(root, resolve(p)));
const all = walk('test').filter((f) => filters.length === 0 || filters.some((p) => f === p || f.startsWith(`${p}/`)));
const isSerial = (f) => /^test\/(serial|fault|cluster)\//.test(f);
const groups = [
  { files: all.filter((f) => !isSerial(f)), concurrency: 2 },
  { files: all.filter(isSerial), concurrency: 1 },
];

function run(files, concurrency) {
  return new Promise((done) => {
    const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    const counts = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
    // node's summary lines ("ℹ pass 12") come last; read every line so that a long recap of
    // failures before them cannot push them out of view.
    let partial = '';
    const scan = (line) => {
      const m = /^\S+ (pass|fail|skipped|todo|cancelled) (\d+)$/.exec(line);
      if (m) counts[m[1]] = Number(m[2]);
    };
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) scan(line);
    });
    child.on('close', (code) => {
      scan(partial);
      done({ code: code ?? 1, counts });
    });
  });
}

let failed = 0;
let passed = 0;
let skipped = 0;
let exit = 0;
for (const { files, concurrency } of groups) {
  if (files.length === 0) continue;
  const { code, counts } = await run(files, concurrency);
  passed += counts.pass;
  failed += counts.fail + counts.cancelled;
  skipped += counts.skipped + counts.todo;
  if (code !== 0) exit = code;
}
if (passed + failed === 0) {
  console.error('no test ran');
  exit = 1;
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(exit !== 0 || failed > 0 ? 1 : 0);
