#!/usr/bin/env node
/**
 * The `warren` command: entry point of the package's `bin`. Everything it does lives in `run.ts`.
 *
 * @module
 */
import { runCli } from './run.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now and the process ends by itself; this only guards against a handle
    // left open by mistake, so that a script calling `warren` never hangs after the work is done.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(
      `warren: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
