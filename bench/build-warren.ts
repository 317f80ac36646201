// The benchmark runs warren as its users do: the built package (dist/esm), not src/ through tsx, whose
// transform wraps every function made at run time in a naming helper (esbuild's keepNames) that the
// peers, loaded from their published JavaScript, do not pay. Built here, once per run, if src/ changed.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Rebuilds dist/ when src/ is newer (scripts/build.mjs --if-stale); throws if that fails. */
export function buildWarren(): void {
  const result = spawnSync(process.execPath, ['scripts/build.mjs', '--if-stale'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`could not build warren (node scripts/build.mjs exited ${result.status})`);
}
