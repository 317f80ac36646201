/**
 * `warren perf` and `warren demo` (what `npm start` runs), as real processes against the broker.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PerfResult } from '../../src/cli/commands/perf.js';
import { warren } from './helpers.js';

describe('warren perf and demo', { concurrency: 2 }, () => {
  test('perf --json: messages flow, confirms and latencies are measured, the temporary queue is gone', async () => {
    const r = await warren(['perf', '--duration', '1', '--confirm', '--size', '64', '--json'], { timeoutMs: 40_000 });
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as PerfResult;
    assert.ok(result.sent > 0, 'something was sent');
    assert.equal(result.confirmed, result.sent, 'every publish was confirmed');
    assert.equal(result.received, result.sent, 'the consumer drained the queue');
    assert.equal(result.nacked, 0);
    assert.ok(result.rates.sent > 0);
    assert.ok(result.latency.consume.count > 0);
    assert.ok(result.latency.consume.p50 > 0 && result.latency.consume.p50 <= result.latency.consume.p99);
    assert.ok(result.latency.confirm !== undefined && result.latency.confirm.count === result.confirmed);
    assert.equal(result.config.size, 64);
    const gone = await warren(['queue', 'info', result.queue]);
    assert.equal(gone.code, 4, 'the temporary queue was deleted');
  });

  test('perf prints a summary table; rate limiting holds', async () => {
    const r = await warren(['perf', '--duration', '1.5', '--rate', '200', '-x', '2', '-y', '2'], { timeoutMs: 40_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^warren perf: 2 producers, 2 consumers, 12 B messages, no confirms, prefetch 500, 200 msg\/s per producer/,
    );
    assert.match(r.stdout, /\n {2}sent +[\d,]+ +[\d,]+\n/);
    assert.match(r.stdout, /\n {2}received +[\d,]+ +[\d,]+\n/);
    assert.match(r.stdout, /\n {2}latency \(ms\) +min +p50 +p75 +p95 +p99 +max\n {2}publish → delivery /);
    const m = /throughput: ([\d,]+) msg\/s sent/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const rate = Number(m[1]!.replace(/,/g, ''));
    assert.ok(rate >= 250 && rate <= 450, `2 producers at 200 msg/s each sent ${rate} msg/s`);
  });

  test('demo: a round trip, an RPC and a short perf', async () => {
    const r = await warren(['demo', '--duration', '1'], { timeoutMs: 40_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^connected to 127\.0\.0\.1:5672 \(RabbitMQ [\d.]+\) in [\d.]+ ms$/m);
    assert.match(r.stdout, /^published 3 messages, all confirmed by the broker in/m);
    assert.match(r.stdout, /received #2: \{"order":42,"items":\["tea","scones"\]\} \(application\/json\)/);
    assert.match(r.stdout, /^consumed and acknowledged 3 messages/m);
    assert.match(r.stdout, /^rpc round trip: 'ping' -> 'PING' in/m);
    assert.match(r.stdout, /^throughput: [\d,]+ msg\/s sent, [\d,]+ msg\/s received/m);
  });
});
