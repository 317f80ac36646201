/**
 * Dispatches `warren <command> [args]` to its subcommand, handles `--help`, `--version`, Ctrl-C and
 * turns every failure into one typed line on stderr and an exit code (see `EXIT`).
 *
 * @module
 */
import { VERSION } from '../version.js';
import { formatHelp, parseArgs, suggest, UsageError, usageLine } from './args.js';
import { bind, unbind } from './commands/bind.js';
import { consume } from './commands/consume.js';
import { demo } from './commands/demo.js';
import { exchangeDeclare, exchangeDelete } from './commands/exchange.js';
import { perf } from './commands/perf.js';
import { publish } from './commands/publish.js';
import { queueDeclare, queueDelete, queueInfo, queuePurge } from './commands/queue.js';
import { rpc } from './commands/rpc.js';
import { rpcServer } from './commands/rpc-server.js';
import { type Command, type Context, EXIT, exitCodeOf, formatError, type Io } from './common.js';

/** Every subcommand by its full name (two words for `queue …` and `exchange …`). */
export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  (
    [
      publish,
      consume,
      rpc,
      rpcServer,
      queueDeclare,
      queueDelete,
      queuePurge,
      queueInfo,
      exchangeDeclare,
      exchangeDelete,
      bind,
      unbind,
      perf,
      demo,
    ] as unknown as Command[]
  ).map((c) => [c.spec.name, c]),
);

const GROUPS = new Set(['queue', 'exchange']);

/** The top-level `warren --help`. */
export function topHelp(): string {
  const width = Math.max(...[...COMMANDS.keys()].map((k) => k.length));
  const rows = [...COMMANDS.values()].map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary}`);
  return [
    'Usage: warren <command> [options]',
    '',
    'A command line for RabbitMQ and any AMQP 0-9-1 broker: publish, consume, RPC, topology and load tests.',
    '',
    'Commands:',
    ...rows,
    '',
    'Every command takes --url URL (default $AMQP_URL, else amqp://guest:guest@127.0.0.1:5672),',
    '--json for machine-readable output, --debug to trace frames, and --help.',
    'Exit codes: 0 ok, 1 failure, 2 usage, 3 connection, 4 refused by the broker, 5 not confirmed,',
    '6 timeout, 130 interrupted.',
    '',
    `warren ${VERSION}. Run 'warren <command> --help' for a command's options.`,
    '',
  ].join('\n');
}

function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and resolves with the exit code.
 * Installs Ctrl-C handling for the duration: the first Ctrl-C asks the command to stop cleanly, a
 * second one exits at once.
 */
export async function runCli(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const wantsJson = argv.includes('--json');
  let name = argv[0];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const about = name === 'help' ? argv[1] : undefined;
    if (about !== undefined) return runCli([...argv.slice(1), '--help'], io);
    io.stdout.write(topHelp());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`${VERSION}\n`);
    return EXIT.OK;
  }
  let rest = argv.slice(1);
  if (GROUPS.has(name)) {
    const sub = rest[0];
    if (sub === undefined || sub.startsWith('-')) {
      const subs = [...COMMANDS.values()].filter((c) => c.spec.name.startsWith(`${name} `));
      io.stdout.write(
        [`Usage: warren ${name} <${subs.map((c) => c.spec.name.split(' ')[1]).join('|')}> ...`, '']
          .concat(subs.map((c) => `  ${usageLine(c.spec)}\n      ${c.spec.summary}`))
          .join('\n') + '\n',
      );
      return sub === undefined ? EXIT.USAGE : EXIT.OK;
    }
    name = `${name} ${sub}`;
    rest = rest.slice(1);
  }
  const cmd = COMMANDS.get(name);
  if (cmd === undefined) {
    const hint = suggest(name, COMMANDS.keys());
    io.stderr.write(
      `${formatError(new UsageError(`unknown command '${name}'${hint ? ` (did you mean '${hint}'?)` : ''}; see 'warren --help'`), 'warren', wantsJson)}\n`,
    );
    return EXIT.USAGE;
  }

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT.INTERRUPTED);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: Context = { io, signal: controller.signal, command: name };
  try {
    const parsed = parseArgs(rest, cmd.spec);
    if (parsed.help) {
      io.stdout.write(formatHelp(cmd.spec));
      return EXIT.OK;
    }
    return await cmd.run(parsed, ctx);
  } catch (err) {
    io.stderr.write(`${formatError(err, `warren ${name}`, wantsJson)}\n`);
    if (err instanceof UsageError && !wantsJson) io.stderr.write(`usage: ${usageLine(cmd.spec)} (see --help)\n`);
    return exitCodeOf(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
