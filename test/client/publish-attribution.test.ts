/**
 * A channel error caused by one publish rejects that publish only, even when the broker's reply
 * names no exchange: a burst of innocents interleaved with a few messages the broker refuses
 * (a `userId` that is not the authenticated user: 406 PRECONDITION_FAILED, no exchange named) ends
 * with exactly the culprits rejected, every innocent confirmed and in the queue, and no culprit
 * stored. The named-exchange fast path (404 for a missing exchange) is checked alongside.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChannelClosedByServer } from '../../src/index.js';
import { drain, withChannel } from '../support/broker.js';
import { fileFixture } from '../support/client.js';

const { clients, resources } = fileFixture();

const INNOCENTS = 900;
/** Positions of the culprits in the burst. */
const CULPRITS = new Set([17, 18, 250, 251, 252, 600, 899]);

type Outcome = { id: string; ok: true } | { id: string; ok: false; error: unknown };

async function outcomes(publishes: { id: string; done: Promise<void> }[]): Promise<Outcome[]> {
  return Promise.all(
    publishes.map(({ id, done }) =>
      done.then(
        (): Outcome => ({ id, ok: true }),
        (error: unknown): Outcome => ({ id, ok: false, error }),
      ),
    ),
  );
}

describe('publish attribution', () => {
  test(`${INNOCENTS} innocents and ${CULPRITS.size} messages the broker refuses with a text naming no exchange: only the culprits are rejected`, {
    timeout: 30_000,
  }, async () => {
    const client = clients.make({ name: 'attribution', backoff: { initialDelay: 5, maxDelay: 50 } });
    const queue = resources.queue('attribution');
    await client.declareQueue(queue);
    const pub = client.publisher({ maxUnconfirmed: 300 });
    const publishes: { id: string; done: Promise<void> }[] = [];
    for (let i = 0, innocent = 0; innocent < INNOCENTS; i++) {
      if (CULPRITS.has(i)) {
        const id = `culprit-${i}`;
        publishes.push({ id, done: pub.publish('', queue, id, { messageId: id, userId: 'not-guest' }) });
      } else {
        const id = `innocent-${innocent++}`;
        publishes.push({ id, done: pub.publish('', queue, id, { messageId: id }) });
      }
    }
    const results = await outcomes(publishes);
    const rejected = results.filter((r) => !r.ok);
    assert.deepEqual(
      rejected.map((r) => r.id).sort(),
      [...CULPRITS].map((i) => `culprit-${i}`).sort(),
      'exactly the culprits are rejected',
    );
    for (const r of rejected) {
      const error = (r as { error: unknown }).error;
      assert.ok(error instanceof ChannelClosedByServer, `a culprit gets the broker's close, got ${String(error)}`);
      assert.equal(error.replyCode, 406);
      assert.match(error.replyText, /user_id/);
    }
    const stored = await withChannel(async (ch) => (await drain(ch, queue)).map((m) => m.properties.messageId!));
    const storedSet = new Set(stored);
    const missing = results.filter((r) => r.ok && !storedSet.has(r.id)).map((r) => r.id);
    assert.deepEqual(missing, [], 'every innocent is stored');
    assert.deepEqual(
      stored.filter((id) => id.startsWith('culprit-')),
      [],
      'no culprit is stored',
    );
    assert.equal(storedSet.size, INNOCENTS);
  });

  test('a publish to a missing exchange (404 names it) rejects every message to it alone, at once', {
    timeout: 20_000,
  }, async () => {
    const client = clients.make({ name: 'attribution-404', backoff: { initialDelay: 5, maxDelay: 50 } });
    const queue = resources.queue('attribution-404');
    await client.declareQueue(queue);
    const pub = client.publisher();
    const missing = resources.exchange('missing');
    const publishes: { id: string; done: Promise<void> }[] = [];
    for (let i = 0; i < 300; i++) {
      const id = i % 100 === 50 ? `culprit-${i}` : `innocent-${i}`;
      const exchange = id.startsWith('culprit-') ? missing : '';
      publishes.push({ id, done: pub.publish(exchange, queue, id, { messageId: id }) });
    }
    const results = await outcomes(publishes);
    assert.deepEqual(
      results.filter((r) => !r.ok).map((r) => r.id),
      ['culprit-50', 'culprit-150', 'culprit-250'],
    );
    const stored = new Set(
      await withChannel(async (ch) => (await drain(ch, queue)).map((m) => m.properties.messageId!)),
    );
    assert.equal(stored.size, 297);
  });
});
