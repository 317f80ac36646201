/**
 * Runs the `warren` CLI as a real process (the build when fresh, else the sources through tsx) and
 * collects what it printed. Each call has a time limit; a process still running then is killed and the test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../support/wait.js';

export const root = resolve(fileURLToPath(import.meta.url), '../../..');
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * How to start the CLI: the built `dist/esm/cli/main.js` when it is newer than every source file
 * (CI builds before it tests; a plain `node` starts four times faster than through tsx), otherwise
 * the sources through tsx, so that a stale build is never what is tested.
 */
export const CLI: readonly string[] = (() => {
  const built = join(root, 'dist/esm/cli/main.js');
  try {
    if (statSync(built).mtimeMs >= newestSource(join(root, 'src'))) return [built];
  } catch {
    // Not built: use the sources.
  }
  return ['--import', 'tsx', join(root, 'src/cli/main.ts')];
})();

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** A running `warren` process. */
export interface RunningCli {
  child: ChildProcess;
  result: Promise<CliResult>;
  /** What it has printed so far. */
  stdout(): string;
  stderr(): string;
}

/** Starts `warren ARGS`, for tests that interact with it while it runs. */
export function startWarren(args: readonly string[], options: CliOptions = {}): RunningCli {
  const child = spawn(process.execPath, [...CLI, ...args], {
    cwd: root,
    env: { ...process.env, AMQP_URL, WARREN_DEBUG: '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  const timeoutMs = options.timeoutMs ?? 30_000;
  const result = new Promise<CliResult>((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(
        new Error(`warren ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`),
      );
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
  return { child, result, stdout: () => stdout, stderr: () => stderr };
}

/** Runs `warren ARGS` to completion. */
export function warren(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startWarren(args, options).result;
}

let counter = 0;
/** A queue or exchange name no other test uses. */
export function uniqueName(prefix: string): string {
  counter++;
  return `warren-cli-test-${process.pid}-${counter}-${prefix}`;
}

/** Resolves when `read()` matches `pattern`, polling; rejects after `timeoutMs`. */
export function waitForOutput(read: () => string, pattern: RegExp, timeoutMs = 15_000): Promise<void> {
  return waitFor(() => pattern.test(read()), {
    timeout: timeoutMs,
    interval: 50,
    what: String(pattern),
    state: () => `output so far:\n${read()}`,
  });
}
