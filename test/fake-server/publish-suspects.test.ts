/**
 * Attribution on the wire: when the broker closes the publisher's channel because of a publish and
 * names no exchange, the unconfirmed messages are sent again one at a time, each alone in flight
 * until its confirm; the one whose send closes the channel again is rejected, the others resolve,
 * and pipelining resumes afterwards.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { ChannelClosedByServer, type Client, createClient } from '../../src/index.js';
import type { FakeConnection } from '../support/fake-server.js';
import { fakeTest, serve } from './helpers.js';
import { within } from '../support/wait.js';
import { playBroker } from '../support/fake-server.js';

const clients: Client[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close({ timeout: 500 }).catch(() => {})));
});

const FIRST = ['m0', 'm1', 'm2', 'm3', 'bad', 'm4', 'm5', 'm6', 'm7', 'm8'];
const LATER = Array.from({ length: 20 }, (_, i) => `later-${i}`);
const PRECONDITION = {
  replyCode: 406,
  replyText: "PRECONDITION_FAILED - user_id property set to 'nobody' but authenticated user was 'guest'",
  classId: 60,
  methodId: 40,
};

fakeTest('suspects are sent again one at a time; only the one that closes the channel alone is rejected', async () => {
  /** Per message id: how many publishes were unconfirmed on its channel when it arrived (itself excluded). */
  const alongside = new Map<string, number[]>();
  let channelsOpened = 0;
  const server = await serve(async (s: FakeConnection) => {
    await s.handshake({ heartbeat: 0 });
    const tags = new Map<number, number>();
    const unacked = new Map<number, number>();
    const closed = new Set<number>();
    let firstBatch = 0;
    await playBroker(s, {
      onInput: (input) => {
        if (input.kind === 'method') {
          const { name, channel } = input.m;
          if (name === 'channel.open') {
            channelsOpened++;
            closed.delete(channel);
            tags.set(channel, 0);
            unacked.set(channel, 0);
          }
          if (name === 'channel.close-ok') return true;
          return false;
        }
        const { channel } = input.c;
        if (closed.has(channel)) return true; // the broker discards what follows its close
        const id = input.c.properties.messageId ?? '?';
        const tag = (tags.get(channel) ?? 0) + 1;
        tags.set(channel, tag);
        const before = unacked.get(channel) ?? 0;
        alongside.set(id, [...(alongside.get(id) ?? []), before]);
        unacked.set(channel, before + 1);
        const closeChannel = () => {
          closed.add(channel);
          s.send(channel, 'channel.close', PRECONDITION);
        };
        if (channelsOpened === 1) {
          // The first burst: close the channel once all of it is in, without saying which message.
          if (++firstBatch === FIRST.length) closeChannel();
          return true;
        }
        if (id === 'bad') {
          closeChannel();
          return true;
        }
        // Confirm a little later, so that a pipelining client would send the next one meanwhile.
        setTimeout(() => {
          if (closed.has(channel) || s.isClosed) return;
          unacked.set(channel, (unacked.get(channel) ?? 1) - 1);
          s.send(channel, 'basic.ack', { deliveryTag: tag, multiple: false });
        }, 5);
        return true;
      },
    });
  });
  const client = createClient({ urls: [server.url], heartbeat: 0, backoff: { initialDelay: 5, maxDelay: 20 } });
  clients.push(client);
  const pub = client.publisher();
  const outcomes = await within(
    Promise.all(
      FIRST.map((id) =>
        pub.publish('', 'q', id, { messageId: id }).then(
          () => 'ok',
          (err: unknown) => err,
        ),
      ),
    ),
    5000,
    'the first burst',
  );
  const rejected = FIRST.filter((_, i) => outcomes[i] !== 'ok');
  assert.deepEqual(rejected, ['bad'], 'only the culprit is rejected');
  const error = outcomes[FIRST.indexOf('bad')];
  assert.ok(error instanceof ChannelClosedByServer && error.replyCode === 406, String(error));
  for (const id of FIRST) {
    const [, ...resends] = alongside.get(id) ?? [];
    assert.ok(resends.length >= 1, `${id} was sent again`);
    assert.deepEqual(
      resends,
      resends.map(() => 0),
      `${id} was alone in flight when sent again`,
    );
  }
  await within(Promise.all(LATER.map((id) => pub.publish('', 'q', id, { messageId: id }))), 5000, 'the later burst');
  const most = Math.max(...LATER.map((id) => alongside.get(id)?.[0] ?? 0));
  assert.ok(most > 1, `pipelining resumed afterwards (at most ${most} alongside)`);
  assert.equal(channelsOpened, 3, 'one channel for the burst, one for the suspects up to the culprit, one after it');
  await client.close({ timeout: 1000 });
});
