/**
 * An ack of a finished handler reaches the wire before the next handler's synchronous work can hold
 * it back (issue 10, 4d): with a handler that blocks the event loop past the heartbeat timeout, the
 * broker drops the connection and requeues what was unacked; a message whose handler had finished
 * before the block must not be among them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileFixture } from '../support/client.js';
import { waitFor } from '../support/wait.js';

const { clients, resources } = fileFixture();

/** Blocks the event loop, as a CPU-bound handler does. */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}

describe('ack latency', () => {
  const cases = [
    { kind: 'async', concurrency: 1 },
    { kind: 'sync', concurrency: 1 },
    { kind: 'async', concurrency: 3 },
  ] as const;
  for (const { kind, concurrency } of cases) {
    test(`finished ${kind} handlers (concurrency ${concurrency}) are never redelivered when a later handler blocks past the heartbeat`, async () => {
      const client = clients.make({
        name: `ack-latency-${kind}-${concurrency}`,
        heartbeat: 1,
        backoff: { initialDelay: 20, maxDelay: 200 },
      });
      const queue = resources.queue(`ack-latency-${kind}-${concurrency}`);
      await client.declareQueue(queue);
      const pub = client.publisher();
      const total = 6;
      await Promise.all(Array.from({ length: total }, (_, i) => pub.publish('', queue, `m${i}`)));
      await pub.close();
      let disconnects = 0;
      client.on('disconnect', () => disconnects++);

      const finished = new Set<string>();
      // What had finished when the blocking handler started: those acks must already be on the wire.
      let finishedBeforeBlock: string[] = [];
      const redelivered: string[] = [];
      let blocked = false;
      const handle = (msg: { body: Buffer; redelivered: boolean }): void => {
        const body = msg.body.toString();
        if (msg.redelivered) redelivered.push(body);
        // The 4th message blocks, once, long enough (4 s) for a 1 s heartbeat to expire. Handlers
        // that run after it, before the client sees the broker's close, ack on a dead connection:
        // they may come back, and are not what this test is about.
        if (body === 'm3' && !blocked) {
          blocked = true;
          finishedBeforeBlock = [...finished];
          blockFor(4000);
          return;
        }
        finished.add(body);
      };
      const sub = client.consume(queue, kind === 'sync' ? (msg) => handle(msg) : async (msg) => handle(msg), {
        prefetch: total,
        concurrency,
      });
      await waitFor(() => finished.size === total, { timeout: 25_000, what: 'every message handled' });
      await sub.cancel();
      assert.ok(disconnects >= 1, 'the block cost the connection (else the test proves nothing)');
      assert.ok(finishedBeforeBlock.length >= 2, `handlers finished before the block: ${finishedBeforeBlock}`);
      const lost = redelivered.filter((body) => finishedBeforeBlock.includes(body));
      assert.deepEqual(lost, [], 'a message whose handler had finished before the block was delivered again');
      assert.ok(redelivered.includes('m3'), 'the broker requeued what was unacked (else the test proves nothing)');
    });
  }
});
