/**
 * Reading the environment where the runtime may refuse it.
 *
 * @module
 */

/**
 * An environment variable, or `undefined` where it is unset or the runtime does not let the program
 * read it (Deno without `--allow-env` throws on `process.env.X`): warren's variables are optional
 * switches, so a program that was not granted env access still runs, with their defaults.
 * @internal
 */
export function readEnv(name: string): string | undefined {
  try {
    return process.env[name];
  } catch {
    return undefined;
  }
}
