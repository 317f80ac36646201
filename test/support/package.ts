/**
 * Installing warren as a user does, into scratch projects: from a git URL (a local bare repository
 * holding one commit of a clean copy of this working tree) or from a folder. Used by the package and
 * runtime-matrix tests.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const root = resolve(fileURLToPath(import.meta.url), '../../..');
export const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// npm revalidates every devDependency of a git dependency otherwise; the npm cache is enough.
const npmEnv = { ...process.env, npm_config_prefer_offline: 'true', WARREN_DEBUG: '' };

/** Copies what a clean clone of this working tree holds (tracked and new, not ignored files: no dist). */
export async function cleanCopy(dest: string): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    maxBuffer: 16 * 1024 * 1024,
  });
  for (const f of stdout.split('\0')) {
    if (f === '' || f === 'node_modules' || !existsSync(join(root, f))) continue;
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    cpSync(join(root, f), join(dest, f));
  }
}

/** Makes `dir/warren.git`, a bare repository of one commit of a clean copy; returns its file:// URL. */
export async function bareRepository(dir: string): Promise<string> {
  const work = join(dir, 'repo');
  await cleanCopy(work);
  const git = (args: string[], cwd: string) =>
    run('git', ['-c', 'user.name=test', '-c', 'user.email=test@localhost', ...args], { cwd, timeout: 60_000 });
  await git(['init', '-q'], work);
  await git(['add', '-A'], work);
  await git(['commit', '-q', '-m', 'snapshot'], work);
  await git(['clone', '-q', '--bare', work, join(dir, 'warren.git')], dir);
  return `git+${pathToFileURL(join(dir, 'warren.git')).href}`;
}

/** A clean copy where `npm install` has been run (its node_modules is this project's). */
export async function installedClone(dest: string): Promise<string> {
  await cleanCopy(dest);
  symlinkSync(join(root, 'node_modules'), join(dest, 'node_modules'), 'dir');
  return dest;
}

/** Creates an empty project at `app` and runs `npm install <spec>` in it. */
export async function installInto(app: string, spec: string, extra: string[] = []): Promise<void> {
  mkdirSync(app, { recursive: true });
  writeFileSync(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'warren-scratch-app', version: '1.0.0', private: true }, null, 2)}\n`,
  );
  await run(npm, ['install', '--no-audit', '--no-fund', '--no-package-lock', ...extra, spec], {
    cwd: app,
    env: npmEnv,
    timeout: 300_000,
  });
}
