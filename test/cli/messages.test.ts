/**
 * What the `warren` command says when things are not as the user thought: each message names what
 * to check, counts agree in number, and `perf` says which latency it measured.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PerfResult } from '../../src/cli/commands/perf.js';
import { uniqueName, warren } from './helpers.js';

describe('warren CLI messages', { concurrency: 4 }, () => {
  test('connection refused says what to check', async () => {
    const r = await warren(['queue', 'info', 'x', '--url', 'amqp://guest:guest@127.0.0.1:1']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /ECONNREFUSED.*is the broker running\? check --url or AMQP_URL/);
  });

  test('rpc to a queue nobody declared: names the queue and the server to start, no mandatory flag', async () => {
    const queue = uniqueName('no-server');
    const r = await warren(['rpc', '-q', queue, 'x']);
    assert.equal(r.code, 5);
    assert.doesNotMatch(r.stderr, /mandatory/);
    assert.match(r.stderr, new RegExp(`no queue '${queue}'.*warren rpc-server -q ${queue}`));
  });

  test('queue delete of a queue that does not exist says so (exit 4), and deletes nothing', async () => {
    const queue = uniqueName('never-existed');
    const r = await warren(['queue', 'delete', queue]);
    assert.equal(r.code, 4, r.stdout);
    assert.doesNotMatch(r.stdout, /deleted/);
    assert.match(r.stderr, new RegExp(`NOT_FOUND - no queue '${queue}'`));
  });

  test('counts agree in number: 1 message, 1 consumer', async () => {
    const queue = uniqueName('counts');
    try {
      await warren(['queue', 'declare', queue, '--no-durable']);
      await warren(['publish', '-q', queue, 'one']);
      const info = await warren(['queue', 'info', queue]);
      assert.match(info.stdout, /: 1 message ready, 0 consumers$/m);
      const deleted = await warren(['queue', 'delete', queue]);
      assert.match(deleted.stdout, /deleted with 1 message$/m);
    } finally {
      await warren(['queue', 'delete', queue]);
    }
  });

  test('perf names its latencies: publish to delivery, publish to confirm', async () => {
    const r = await warren(['perf', '--duration', '0.5', '--confirm'], { timeoutMs: 40_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\n {2}latency \(ms\) +min +p50 +p75 +p95 +p99 +max\n {2}publish → delivery +\d/);
    assert.match(r.stdout, /\n {2}publish → confirm +\d/);
  });

  test('perf --json with a short duration keeps several samples, covering the whole run', async () => {
    const r = await warren(['perf', '--duration', '1', '--json'], { timeoutMs: 40_000 });
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as PerfResult;
    assert.ok(result.samples.length >= 5, `samples: ${JSON.stringify(result.samples)}`);
    assert.ok(result.samples.at(-1)!.t >= result.seconds - 0.05, 'the last sample reaches the end of the run');
  });
});
