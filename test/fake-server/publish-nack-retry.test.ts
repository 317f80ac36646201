/**
 * Nacks on the wire: the robust publisher sends a nacked message again (`nackRetries`, default 8),
 * first on the same channel and then on a fresh one, because a channel opened while a quorum queue
 * elects its leader can go on nacking (seen on RabbitMQ 3.10 after a node stop); the later resends
 * are spaced by the client's backoff so that they outlast an election, without holding back other
 * messages; a message nacked more than `nackRetries` times rejects with `PublishNacked`,
 * `nackRetries: 0` rejects at once, and closing the publisher rejects a resting message at once.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { ClosedError, type Client, createClient, PublishNacked } from '../../src/index.js';
import type { FakeConnection } from '../support/fake-server.js';
import { playBroker } from '../support/fake-server.js';
import { waitFor, within } from '../support/wait.js';
import { fakeTest, observe, rejection, serve } from './helpers.js';

const clients: Client[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close({ timeout: 500 }).catch(() => {})));
});

/**
 * A broker whose channels nack every publish until `nackingChannels` channels have been opened,
 * and ack on the later ones (`nacks` decides instead when given). Records, per message id, the
 * channel-open count and the time of each send.
 */
async function nackingBroker(
  nackingChannels: number,
  nacks: (generation: number, id: string) => boolean = (generation) => generation <= nackingChannels,
) {
  const sends = new Map<string, number[]>();
  const sendTimes = new Map<string, number[]>();
  let opened = 0;
  let clientCloses = 0;
  const server = await serve(async (s: FakeConnection) => {
    await s.handshake({ heartbeat: 0 });
    const tags = new Map<number, number>();
    const channelGeneration = new Map<number, number>();
    await playBroker(s, {
      onInput: (input) => {
        if (input.kind === 'method') {
          if (input.m.name === 'channel.open') {
            opened++;
            channelGeneration.set(input.m.channel, opened);
            tags.set(input.m.channel, 0);
          }
          if (input.m.name === 'channel.close') clientCloses++;
          return false;
        }
        const { channel } = input.c;
        const generation = channelGeneration.get(channel) ?? 0;
        const id = input.c.properties.messageId ?? '?';
        sends.set(id, [...(sends.get(id) ?? []), generation]);
        sendTimes.set(id, [...(sendTimes.get(id) ?? []), Date.now()]);
        const tag = (tags.get(channel) ?? 0) + 1;
        tags.set(channel, tag);
        s.send(channel, nacks(generation, id) ? 'basic.nack' : 'basic.ack', {
          deliveryTag: tag,
          multiple: false,
          requeue: false,
        });
        return true;
      },
    });
  });
  return {
    server,
    sends,
    sendTimes,
    get opened() {
      return opened;
    },
    get clientCloses() {
      return clientCloses;
    },
  };
}

const IDS = ['a', 'b', 'c', 'd', 'e'];

/** Waits until the broker has seen `id` twice: its first send and its at-once resend. */
function sentTwice(broker: { sends: Map<string, number[]> }, id: string): Promise<void> {
  return waitFor(() => (broker.sends.get(id)?.length ?? 0) >= 2, {
    timeout: 2000,
    interval: 2,
    what: `${id}'s second send`,
  });
}

fakeTest('a channel that nacks everything is replaced; every message is confirmed on the next one', async () => {
  const broker = await nackingBroker(1);
  const client = createClient({ urls: [broker.server.url], heartbeat: 0, backoff: { initialDelay: 5, maxDelay: 20 } });
  clients.push(client);
  const pub = client.publisher();
  await within(Promise.all(IDS.map((id) => pub.publish('', 'q', id, { messageId: id }))), 5000, 'the publishes');
  for (const id of IDS) {
    const gens = broker.sends.get(id) ?? [];
    assert.equal(gens.at(-1), 2, `${id} was confirmed on the second channel (sends on channels ${gens.join(',')})`);
    assert.ok(gens.length <= 3, `${id} was sent at most three times (${gens.join(',')})`);
    assert.equal(gens[0], 1, `${id} was first sent on the first channel`);
  }
  assert.equal(broker.opened, 2, 'one fresh channel, not one per nack');
  assert.equal(broker.clientCloses, 1, 'the client closed the nacking channel');
  assert.equal(pub.pendingCount, 0);
  await client.close({ timeout: 1000 });
});

fakeTest('a message nacked on every try rejects with PublishNacked after nackRetries + 1 sends', async () => {
  const broker = await nackingBroker(Number.POSITIVE_INFINITY);
  const client = createClient({ urls: [broker.server.url], heartbeat: 0, backoff: { initialDelay: 5, maxDelay: 20 } });
  clients.push(client);
  const pub = client.publisher({ nackRetries: 2 });
  const err = await rejection(pub.publish('', 'q', 'x', { messageId: 'x' }), 5000, 'the publish');
  assert.ok(err instanceof PublishNacked, `expected PublishNacked, got ${String(err)}`);
  assert.equal(broker.sends.get('x')?.length, 3, 'sent once and again twice');
  const none = client.publisher({ nackRetries: 0 });
  await assert.rejects(within(none.publish('', 'q', 'y', { messageId: 'y' }), 5000, 'the publish'), PublishNacked);
  assert.equal(broker.sends.get('y')?.length, 1, 'nackRetries: 0 sends once');
  assert.throws(() => client.publisher({ nackRetries: -1 }), /nackRetries must be a whole number/);
  await client.close({ timeout: 1000 });
});

fakeTest(
  'resends after the first are spaced by the backoff, growing, and other messages are not held back',
  async () => {
    const broker = await nackingBroker(0, (_generation, id) => id === 'x');
    const initialDelay = 60;
    const client = createClient({
      urls: [broker.server.url],
      heartbeat: 0,
      backoff: { initialDelay, maxDelay: 10_000 },
    });
    clients.push(client);
    const pub = client.publisher({ nackRetries: 4 });
    const x = observe(pub.publish('', 'q', 'x', { messageId: 'x' }));
    // Sent while x rests: confirmed without waiting for x's retries.
    await sentTwice(broker, 'x');
    const startedY = Date.now();
    await within(pub.publish('', 'q', 'y', { messageId: 'y' }), 2000, 'y');
    const settled = await within(x.settled, 5000, 'x');
    assert.ok(!settled.ok, 'x rejects');
    const err = settled.error;
    assert.ok(err instanceof PublishNacked, `expected PublishNacked, got ${String(err)}`);
    const times = broker.sendTimes.get('x') ?? [];
    assert.equal(times.length, 5, 'sent once and again four times');
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // The first resend goes at once; the n-th later one after half to all of initialDelay * 2^(n-1).
    assert.ok(gaps[0]! < initialDelay / 2, `first resend at once (gaps ${gaps.join(', ')} ms)`);
    for (let n = 1; n < gaps.length; n++) {
      const ceiling = initialDelay * 2 ** (n - 1);
      assert.ok(
        gaps[n]! >= ceiling / 2 - 2,
        `resend ${n + 1} waited at least ${ceiling / 2} ms (gaps ${gaps.join(', ')} ms)`,
      );
    }
    const yConfirmedIn = (broker.sendTimes.get('y')?.at(-1) ?? 0) - startedY;
    assert.ok(yConfirmedIn < initialDelay * 4, `y was sent within ${yConfirmedIn} ms, not after x's retries`);
    await client.close({ timeout: 1000 });
  },
);

fakeTest('closing the publisher rejects a message resting between nacked sends at once', async () => {
  const broker = await nackingBroker(Number.POSITIVE_INFINITY);
  const client = createClient({
    urls: [broker.server.url],
    heartbeat: 0,
    backoff: { initialDelay: 20_000, maxDelay: 20_000 },
  });
  clients.push(client);
  const pub = client.publisher();
  const x = observe(pub.publish('', 'q', 'x', { messageId: 'x' }));
  await sentTwice(broker, 'x');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(pub.pendingCount, 1, 'the resting message is still held');
  await within(pub.close({ timeout: 50 }), 2000, 'the close');
  const settled = await within(x.settled, 500, 'x');
  assert.ok(!settled.ok, 'x rejects');
  const err = settled.error;
  assert.ok(err instanceof ClosedError, `expected ClosedError, got ${String(err)}`);
  assert.equal(broker.sends.get('x')?.length, 2, 'not sent again after the close');
  await client.close({ timeout: 1000 });
});
