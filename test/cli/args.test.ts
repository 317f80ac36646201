/**
 * The CLI's argument parser and help, in process.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { defineCommand, formatHelp, parseArgs, suggest, UsageError } from '../../src/cli/args.js';
import { parseHeaders } from '../../src/cli/common.js';
import { COMMANDS, runCli } from '../../src/cli/run.js';

const spec = defineCommand({
  name: 'try',
  summary: 'A command to test the parser with.',
  positionals: [{ name: 'BODY', description: 'body', optional: true }],
  options: {
    queue: { type: 'string', short: 'q', description: 'queue' },
    count: { type: 'number', short: 'n', integer: true, min: 1, description: 'count' },
    header: { type: 'list', short: 'H', description: 'header' },
    ack: { type: 'boolean', default: true, description: 'no ack' },
    persistent: { type: 'boolean', short: 'p', description: 'persistent' },
    mode: { type: 'string', choices: ['a', 'b'], default: 'a', description: 'mode' },
    ifUnused: { type: 'boolean', description: 'if unused' },
  },
});

describe('parseArgs', () => {
  test('long, short, attached and = forms; lists; defaults; negation', () => {
    const r = parseArgs(
      ['-q', 'jobs', '-n5', '--header=a=1', '-H', 'b=2', '--no-ack', '-p', '--if-unused', 'body'],
      spec,
    );
    assert.deepEqual(r.options, {
      queue: 'jobs',
      count: 5,
      header: ['a=1', 'b=2'],
      ack: false,
      persistent: true,
      mode: 'a',
      ifUnused: true,
    });
    assert.deepEqual(r.positionals, ['body']);
    assert.equal(r.help, false);
    const d = parseArgs([], spec);
    assert.equal(d.options.queue, undefined);
    assert.equal(d.options.ack, true);
    assert.equal(d.options.persistent, false);
    assert.deepEqual(d.options.header, []);
  });

  test('-- ends options; - and negative numbers are positionals', () => {
    assert.deepEqual(parseArgs(['--', '--not-an-option'], spec).positionals, ['--not-an-option']);
    assert.deepEqual(parseArgs(['-'], spec).positionals, ['-']);
    assert.deepEqual(parseArgs(['-1'], spec).positionals, ['-1']);
  });

  test('--help and -h anywhere ask for help, even with missing arguments', () => {
    assert.equal(parseArgs(['-q', 'x', '--help'], spec).help, true);
    assert.equal(parseArgs(['-h'], spec).help, true);
  });

  test('errors name the option and suggest the closest one', () => {
    const cases: [string[], RegExp][] = [
      [['--queu', 'x'], /unknown option --queu \(did you mean --queue\?\)/],
      [['-z'], /unknown option -z/],
      [['-n', 'x'], /--count needs a number, got 'x'/],
      [['-n', '1.5'], /--count needs a whole number/],
      [['-n', '0'], /--count must be at least 1/],
      [['--mode', 'c'], /--mode must be one of a, b, got 'c'/],
      [['-q'], /-q needs a value/],
      [['--queue'], /--queue needs a value/],
      [['--persistent=maybe'], /--persistent is a flag/],
      [['one', 'two'], /unexpected argument 'two'/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(
        () => parseArgs(argv, spec),
        (err: unknown) => err instanceof UsageError && message.test(err.message),
        argv.join(' '),
      );
    }
  });

  test('suggest only offers close names', () => {
    assert.equal(suggest('pubilsh', ['publish', 'consume']), 'publish');
    assert.equal(suggest('xyz', ['publish', 'consume']), undefined);
  });

  test('help lists options, with --no- for flags that default to on', () => {
    const help = formatHelp(spec);
    assert.match(help, /^Usage: warren try \[options\] \[BODY\]\n/);
    assert.match(help, /-q, --queue VALUE +queue\n/);
    assert.match(help, / {4}--no-ack +no ack\n/);
    assert.match(help, / {4}--mode VALUE +mode \(default a\)\n/);
    assert.match(help, /-h, --help +Show this help\n/);
  });
});

describe('parseHeaders', () => {
  test('key=value is a string, key:=json is typed', () => {
    assert.deepEqual(parseHeaders(['a=1', 'b:=1', 'c:=true', 'd:=[1,"x"]', 'e=x=y', 'f:={"g":null}']), {
      a: '1',
      b: 1,
      c: true,
      d: [1, 'x'],
      e: 'x=y',
      f: { g: null },
    });
    assert.throws(() => parseHeaders(['novalue']), /expected key=value/);
    assert.throws(() => parseHeaders(['a:=nope']), /must be JSON/);
  });
});

describe('every command', () => {
  test('has help that runCli prints with exit code 0', async () => {
    for (const name of COMMANDS.keys()) {
      const stdout = new PassThrough();
      let text = '';
      stdout.on('data', (c: Buffer) => (text += c.toString()));
      const code = await runCli([...name.split(' '), '--help'], {
        stdout,
        stderr: new PassThrough(),
        stdin: new PassThrough(),
        env: {},
      });
      assert.equal(code, 0, name);
      assert.match(text, new RegExp(`^Usage: warren ${name} \\[options\\]`), name);
      assert.match(text, /--url URL/, name);
      assert.match(text, /--json/, name);
    }
  });
});
