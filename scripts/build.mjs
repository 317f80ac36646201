#!/usr/bin/env node
// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with its .d.ts files and source maps, from src/.
//
//   node scripts/build.mjs              always
//   node scripts/build.mjs --if-stale   only if src/ or the build configuration changed since the last build
//
// `npm run prepare` (run by npm ci, npm pack and npm install from git) uses --if-stale: installing from
// git runs prepare twice in a row (npm install in the clone, then again before packing it).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const stamp = 'dist/.build-stamp';

function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let t = 0;
  for (const name of readdirSync(path)) t = Math.max(t, newest(join(path, name)));
  return t;
}

const inputs = ['src', 'package.json', 'tsconfig.json', 'tsconfig.cjs.json', 'scripts/build.mjs'];
if (process.argv.includes('--if-stale') && existsSync(stamp)) {
  if (statSync(stamp).mtimeMs >= Math.max(...inputs.map(newest))) {
    console.log('dist is up to date');
    process.exit(0);
  }
}

rmSync('dist', { recursive: true, force: true });
const tsc = resolve('node_modules/typescript/bin/tsc');
if (!existsSync(tsc)) {
  console.error('warren: building needs the devDependencies (typescript); run `npm install` first');
  process.exit(1);
}
for (const project of ['tsconfig.json', 'tsconfig.cjs.json']) {
  const r = spawnSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
// Each half says which module system it is, whatever the root package.json says.
writeFileSync('dist/esm/package.json', '{ "type": "module" }\n');
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n');
for (const bin of ['dist/esm/cli/main.js', 'dist/cjs/cli/main.js']) if (existsSync(bin)) chmodSync(bin, 0o755);
writeFileSync(stamp, `${new Date().toISOString()}\n`);
console.log('built dist/esm and dist/cjs');
