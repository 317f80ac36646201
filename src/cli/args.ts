/**
 * The command line parser of the `warren` CLI: zero dependencies, typed from a declarative spec.
 *
 * Options are declared once, with their type, short flag and help text; `parseArgs` returns an object
 * whose fields have the declared types, and `formatHelp` prints the same spec as `--help`. Keys are
 * camelCase and become kebab-case flags (`prefetch` → `--prefetch`, `ifUnused` → `--if-unused`).
 *
 * Accepted forms: `--name value`, `--name=value`, `-n value`, `-n5`, `--flag`, `--no-flag` (booleans),
 * repeated list options (`-H a=1 -H b=2`), `--` to end options, and `-` as a positional (stdin).
 *
 * @module
 */

/** The kinds of values an option can hold. */
export type OptionType = 'string' | 'number' | 'boolean' | 'list';

/** One option of a command. */
export interface OptionDef {
  type: OptionType;
  /** One-letter alias, without the dash. */
  short?: string;
  /** Placeholder in help, e.g. `QUEUE`. */
  value?: string;
  description: string;
  /** A boolean that defaults to `true` is listed in help as `--no-NAME`, so describe the negative form. */
  default?: string | number | boolean;
  /** For numbers: reject fractions. */
  integer?: boolean;
  /** For numbers: smallest value accepted. */
  min?: number;
  /** For strings: the values accepted. */
  choices?: readonly string[];
  /** Left out of `--help` (aliases and plumbing). */
  hidden?: boolean;
}

/** A positional argument of a command, for help and arity checks. */
export interface PositionalDef {
  name: string;
  description: string;
  optional?: boolean;
  /** Takes every remaining argument. */
  variadic?: boolean;
}

/** A command: its options, positionals and help. */
export interface CommandSpec<O extends Record<string, OptionDef> = Record<string, OptionDef>> {
  name: string;
  summary: string;
  /** Extra paragraphs printed under the usage line. */
  details?: string;
  options: O;
  positionals: readonly PositionalDef[];
  examples?: readonly string[];
}

type ValueOf<D extends OptionDef> = D['type'] extends 'number'
  ? number
  : D['type'] extends 'boolean'
    ? boolean
    : D['type'] extends 'list'
      ? string[]
      : string;

/** The parsed options: defaulted, boolean and list options are always present, the rest may be `undefined`. */
export type ParsedOptions<O extends Record<string, OptionDef>> = {
  [K in keyof O]: O[K] extends { default: string | number | boolean } | { type: 'boolean' } | { type: 'list' }
    ? ValueOf<O[K]>
    : ValueOf<O[K]> | undefined;
};

/** The result of `parseArgs`. */
export interface Parsed<O extends Record<string, OptionDef>> {
  options: ParsedOptions<O>;
  positionals: string[];
  /** `--help` or `-h` was given: print help instead of running. */
  help: boolean;
}

/** The command line is wrong: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  readonly code = 'USAGE';
  /** The command whose usage applies, for the hint in the message. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** `ifUnused` → `if-unused`. */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Defines a command with its option types inferred from the literal spec. */
export function defineCommand<const O extends Record<string, OptionDef>>(spec: CommandSpec<O>): CommandSpec<O> {
  return spec;
}

/** Levenshtein distance, for "did you mean" hints; names are short so the quadratic cost is nothing. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest of `candidates` to `word`, if it is close enough to be a likely typo. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function convert(spec: CommandSpec, key: string, def: OptionDef, raw: string): string | number {
  const flag = `--${kebab(key)}`;
  if (def.type === 'number') {
    const n = raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(n)) throw new UsageError(`${flag} needs a number, got '${raw}'`, spec.name);
    if (def.integer && !Number.isInteger(n))
      throw new UsageError(`${flag} needs a whole number, got '${raw}'`, spec.name);
    if (def.min !== undefined && n < def.min)
      throw new UsageError(`${flag} must be at least ${def.min}, got ${raw}`, spec.name);
    return n;
  }
  if (def.choices !== undefined && !def.choices.includes(raw)) {
    throw new UsageError(`${flag} must be one of ${def.choices.join(', ')}, got '${raw}'`, spec.name);
  }
  return raw;
}

/**
 * Parses `argv` (without the command name) against `spec`.
 *
 * @example
 * ```ts
 * const spec = defineCommand({ name: 'x', summary: '', positionals: [],
 *   options: { queue: { type: 'string', short: 'q', description: 'queue' } } });
 * parseArgs(['-q', 'jobs'], spec).options.queue; // 'jobs'
 * ```
 * @throws UsageError for unknown options, missing values and values of the wrong type.
 */
export function parseArgs<O extends Record<string, OptionDef>>(
  argv: readonly string[],
  spec: CommandSpec<O>,
): Parsed<O> {
  const defs = spec.options as Record<string, OptionDef>;
  const byLong = new Map<string, string>();
  const byShort = new Map<string, string>();
  for (const [key, def] of Object.entries(defs)) {
    byLong.set(kebab(key), key);
    if (def.short !== undefined) byShort.set(def.short, key);
  }
  const values: Record<string, string | number | boolean | string[] | undefined> = {};
  for (const [key, def] of Object.entries(defs)) {
    values[key] = def.type === 'list' ? [] : def.type === 'boolean' ? (def.default ?? false) : def.default;
  }
  const positionals: string[] = [];
  let help = false;

  const set = (key: string, raw: string): void => {
    const def = defs[key]!;
    if (def.type === 'list') (values[key] as string[]).push(raw);
    else values[key] = convert(spec as CommandSpec, key, def, raw);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const inline = eq < 0 ? undefined : arg.slice(eq + 1);
      let key = byLong.get(name);
      let negated = false;
      if (key === undefined && name.startsWith('no-')) {
        const positive = byLong.get(name.slice(3));
        if (positive !== undefined && defs[positive]!.type === 'boolean') {
          key = positive;
          negated = true;
        }
      }
      if (key === undefined) {
        const hint = suggest(name, byLong.keys());
        throw new UsageError(`unknown option --${name}${hint ? ` (did you mean --${hint}?)` : ''}`, spec.name);
      }
      const def = defs[key]!;
      if (def.type === 'boolean') {
        if (inline !== undefined) {
          if (!/^(true|false|yes|no|1|0)$/i.test(inline)) {
            throw new UsageError(`--${name} is a flag; give it no value or true/false`, spec.name);
          }
          values[key] = /^(true|yes|1)$/i.test(inline) !== negated;
        } else {
          values[key] = !negated;
        }
        continue;
      }
      if (negated) throw new UsageError(`--${name} is not a flag`, spec.name);
      const raw = inline ?? argv[++i];
      if (raw === undefined) throw new UsageError(`--${name} needs a value`, spec.name);
      set(key, raw);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      // A cluster of short flags (-vx) or a short option with its value attached (-n5, -qjobs).
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        if (letter === 'h') {
          help = true;
          continue;
        }
        const key = byShort.get(letter);
        if (key === undefined) throw new UsageError(`unknown option -${letter}`, spec.name);
        const def = defs[key]!;
        if (def.type === 'boolean') {
          values[key] = true;
          continue;
        }
        const attached = arg.slice(j + 1);
        const raw = attached !== '' ? attached : argv[++i];
        if (raw === undefined) throw new UsageError(`-${letter} needs a value`, spec.name);
        set(key, raw);
        break;
      }
      continue;
    }
    positionals.push(arg);
  }

  if (!help) {
    const required = spec.positionals.filter((p) => !p.optional && !p.variadic).length;
    const variadic = spec.positionals.some((p) => p.variadic);
    if (positionals.length < required) {
      const missing = spec.positionals[positionals.length]!;
      throw new UsageError(`missing ${missing.name}`, spec.name);
    }
    if (!variadic && positionals.length > spec.positionals.length) {
      throw new UsageError(
        `unexpected argument '${positionals[spec.positionals.length]}' (quote a body that contains spaces)`,
        spec.name,
      );
    }
  }
  return { options: values as ParsedOptions<O>, positionals, help };
}

function optionLabel(key: string, def: OptionDef): string {
  // A flag that is on by default is shown as the --no- form users actually type.
  const long = def.type === 'boolean' && def.default === true ? `--no-${kebab(key)}` : `--${kebab(key)}`;
  const value = def.type === 'boolean' ? '' : ` ${def.value ?? (def.type === 'number' ? 'N' : 'VALUE')}`;
  return `${def.short ? `-${def.short}, ` : '    '}${long}${value}`;
}

/** The usage line: `warren publish [options] [BODY]`. */
export function usageLine(spec: CommandSpec, program = 'warren'): string {
  const pos = spec.positionals.map((p) =>
    p.optional || p.variadic ? `[${p.name}${p.variadic ? '...' : ''}]` : p.name,
  );
  return [program, spec.name, '[options]', ...pos].filter((s) => s !== '').join(' ');
}

/** The full `--help` text of a command. */
export function formatHelp(spec: CommandSpec, program = 'warren'): string {
  const lines = [`Usage: ${usageLine(spec, program)}`, '', spec.summary];
  if (spec.details) lines.push('', spec.details);
  if (spec.positionals.length > 0) {
    lines.push('', 'Arguments:');
    const width = Math.max(...spec.positionals.map((p) => p.name.length));
    for (const p of spec.positionals) lines.push(`  ${p.name.padEnd(width)}  ${p.description}`);
  }
  const shown = Object.entries(spec.options).filter(([, def]) => !def.hidden);
  if (shown.length > 0) {
    lines.push('', 'Options:');
    const labels = shown.map(([key, def]) => optionLabel(key, def));
    const width = Math.max(...labels.map((l) => l.length));
    shown.forEach(([, def], i) => {
      const extra =
        def.default !== undefined && def.type !== 'boolean'
          ? ` (default ${def.default})`
          : def.choices
            ? ` (${def.choices.join('|')})`
            : '';
      lines.push(`  ${labels[i]!.padEnd(width)}  ${def.description}${extra}`);
    });
    lines.push(`  ${'-h, --help'.padEnd(width)}  Show this help`);
  }
  if (spec.examples && spec.examples.length > 0) {
    lines.push('', 'Examples:');
    for (const e of spec.examples) lines.push(`  ${e}`);
  }
  return `${lines.join('\n')}\n`;
}
