/**
 * Runs every file in examples/ as its own process against the broker and checks what it prints:
 * the examples are documentation, and this keeps them true.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runExample(file: string, timeoutMs = 30_000, dir = 'examples'): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(dir, file)], {
      cwd: root,
      env: { ...process.env, AMQP_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${file} did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** What each example must print (every pattern, in any order unless the pattern spans lines). */
const EXPECTED: Record<string, RegExp[]> = {
  '01-hello-world.ts': [/\[x\] Sent 'Hello World!'/, /\[x\] Received 'Hello World!'/],
  '02-work-queues.ts': [/Sent 6 tasks/, /All 6 tasks done, worker A did [1-5], worker B did [1-5]/],
  '03-publish-subscribe.ts': [/\[screen\] info: Hello World!/, /\[file\] info: Hello World!/],
  '04-routing.ts': [
    /\[errors-only\] error: a error message/,
    /\[everything\] info: a info message/,
    /\[everything\] warning: a warning message/,
    /\[everything\] error: a error message/,
  ],
  '05-topics.ts': [
    /all <- cron\.critical\n.*all <- cron\.info\.daily\n.*all <- kern\.critical\n.*all <- kern\.info\n.*critical <- cron\.critical\n.*critical <- kern\.critical\n.*kernel <- kern\.critical\n.*kernel <- kern\.info/,
  ],
  '06-rpc.ts': [/fib\(10\) = 55/, /fib\(20\) = 6765/, /fib\(30\) = 832040/],
  '07-publisher-confirms.ts': [
    /individually: published 1000 messages, all confirmed/,
    /in batches of 100: published 1000 messages, all confirmed/,
    /streaming with the robust publisher: published 1000 messages, all confirmed/,
    /the queue held 3000 messages/,
  ],
  'quorum-queue.ts': [
    /delivery 1: redelivered=false/,
    /delivery 3: redelivered=true x-delivery-count=2/,
    /dropped the message after 3 deliveries/,
  ],
  'stream-queue.ts': [
    /from offset 5: 5:event 5, 6:event 6, 7:event 7, 8:event 8, 9:event 9\n/,
    /from offset first: 0:event 0, 1:event 1, .*9:event 9\n/,
  ],
  'single-active-consumer.ts': [
    /first got message 1\nfirst got message 2\nfirst got message 3\nsecond got message 4\nsecond got message 5/,
  ],
  'dead-lettering.ts': [
    /dead letter 'will be rejected': reason=rejected from queue=warren-example\.work/,
    /dead letter 'will expire': reason=expired from queue=warren-example\.work/,
  ],
  'priority-queue.ts': [
    /priority 9: urgent: password reset\npriority 5: normal: invoice\npriority 5: normal: report\npriority 1: low: newsletter\npriority 1: low: cleanup/,
  ],
  'health-endpoint.ts': [
    /GET \/health -> 200 \{"ok":true,"state":"connected","reasons":\[\]\}/,
    /GET \/stats -> state=connected consumers=warren-example\.health\(prefetch 20\)/,
    /after close: GET \/health -> 503 \{"ok":false,"state":"closed","reasons":\["closed"\]\}/,
  ],
  'amqplib-tutorials.ts': [
    /\[x\] Sent 'Hello World!'\n \[x\] Received 'Hello World!'/,
    /\[x\] 6 tasks done, worker A did [1-5], worker B did [1-5]/,
    /\[file\] info: Hello World!\n\[screen\] info: Hello World!/,
    /\[errors-only\] error: a error message\n\[everything\] error: a error message\n\[everything\] info: a info message\n\[everything\] warning: a warning message/,
    /\[all\] cron\.critical.*\n\[all\] cron\.info\.daily.*\n\[all\] kern\.critical.*\n\[all\] kern\.info.*\n\[critical\] cron\.critical.*\n\[critical\] kern\.critical.*\n\[kernel\] kern\.critical.*\n\[kernel\] kern\.info/,
    /fib\(10\) = 55\n.*fib\(20\) = 6765\n.*fib\(30\) = 832040/,
  ],
  'robust-client.ts': [
    /handled order 1: tea/,
    /handled order 2: scones/,
    /handled order 3: jam/,
    /published 3 orders/,
    /iterated order 4/,
  ],
};

describe('examples', { concurrency: 3 }, () => {
  test('every example has expectations and every expectation an example', () => {
    const files = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts'));
    assert.deepEqual(files.sort(), Object.keys(EXPECTED).sort());
  });

  for (const [file, patterns] of Object.entries(EXPECTED)) {
    test(file, async () => {
      const r = await runExample(file);
      assert.equal(r.code, 0, `${file} exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      for (const p of patterns) assert.match(r.stdout, p, `${file} output lacks ${p}\n${r.stdout}`);
    });
  }

  test('amqplib-tutorials.ts is amqplib code: with the import changed back to amqplib it prints the same', async () => {
    const source = readFileSync(join(root, 'examples/amqplib-tutorials.ts'), 'utf8');
    const asAmqplib = source.replaceAll("'../src/amqplib/index.js'", "'amqplib'");
    assert.notEqual(asAmqplib, source, 'the example imports warren/amqplib');
    // Only the import lines differ.
    const changed = source.split('\n').filter((line, i) => line !== asAmqplib.split('\n')[i]);
    assert.ok(
      changed.every((line) => line.startsWith('import ')),
      changed.join('\n'),
    );
    const dir = mkdtempSync(join(root, 'test/examples/.amqplib-'));
    try {
      writeFileSync(join(dir, 'tutorials.ts'), asAmqplib);
      const r = await runExample('tutorials.ts', 30_000, dir);
      assert.equal(r.code, 0, `exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      for (const p of EXPECTED['amqplib-tutorials.ts']!) assert.match(r.stdout, p, `output lacks ${p}\n${r.stdout}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
