/**
 * Confirms that arrive in the same read as the end of the connection settle first: a scripted server
 * receives a window of publishes, then writes the acks of all of them followed, in the same TCP write,
 * by a connection.close (or by the end of the socket). The robust publisher must count every one of
 * those confirms: on the next connection it sends none of them again, as the basic.publish frames
 * the server receives show.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { createClient } from '../../src/index.js';
import type { Client } from '../../src/index.js';
import { FrameEncoder } from '../../src/protocol/frame-encoder.js';
import type { FakeConnection } from '../support/fake-server.js';
import { fakeTest, serve } from './helpers.js';
import { sleep, within } from '../support/wait.js';
import { playBroker } from '../support/fake-server.js';

const WINDOW = 500;
const clients: Client[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close({ timeout: 500 }).catch(() => {})));
});

/** Acks for delivery tags 1..count, one frame each or, with `multiple`, one frame for all, as bytes. */
function acks(channel: number, count: number, multiple: boolean): Buffer {
  const enc = new FrameEncoder(131072);
  if (multiple) enc.method(channel, 'basic.ack', { deliveryTag: count, multiple: true });
  else for (let tag = 1; tag <= count; tag++) enc.method(channel, 'basic.ack', { deliveryTag: tag, multiple: false });
  return Buffer.concat(enc.take());
}

function closeBytes(): Buffer {
  const enc = new FrameEncoder(131072);
  enc.method(0, 'connection.close', {
    replyCode: 320,
    replyText: 'CONNECTION_FORCED - Closed via management plugin',
    classId: 0,
    methodId: 0,
  });
  return Buffer.concat(enc.take());
}

const CASES = [
  { ending: 'connection.close', multiple: false },
  { ending: 'connection.close', multiple: true },
  { ending: 'socket end', multiple: false },
] as const;

for (const { ending, multiple } of CASES) {
  const what = multiple ? `one multiple ack of ${WINDOW}` : `${WINDOW} acks`;
  fakeTest(`${what} in the same write as a ${ending}: none of those messages is sent again`, async () => {
    const published: number[] = [0, 0];
    const server = await serve(async (s: FakeConnection) => {
      await s.handshake({ heartbeat: 0 });
      const first = s.index === 0;
      let channel = 0;
      await playBroker(s, {
        onInput: (input) => {
          if (input.kind === 'method' && input.m.name === 'confirm.select') channel = input.m.channel;
          if (input.kind !== 'publish') return false;
          const n = ++published[s.index === 0 ? 0 : 1]!;
          if (!first) {
            s.send(input.c.channel, 'basic.ack', { deliveryTag: n, multiple: false });
            return true;
          }
          if (n < WINDOW) return true;
          // The whole window is in: confirm it all and end the connection, in one write.
          const tail = ending === 'connection.close' ? closeBytes() : Buffer.alloc(0);
          s.sendRaw(Buffer.concat([acks(channel, WINDOW, multiple), tail]));
          if (ending === 'socket end') s.end();
          return ending === 'socket end' ? 'stop' : true;
        },
      });
    });
    const client = createClient({
      urls: [server.url],
      heartbeat: 0,
      backoff: { initialDelay: 5, maxDelay: 20 },
    });
    clients.push(client);
    client.on('disconnect', () => {});
    const pub = client.publisher({ maxUnconfirmed: WINDOW });
    const all = Array.from({ length: WINDOW }, (_, i) => pub.publish('', 'q', `m${i}`, { messageId: String(i) }));
    await within(Promise.all(all), 5000, 'every publish');
    // Give a wrongly requeued message every chance to be sent on the second connection.
    await within(
      (async () => {
        while (server.connections.length < 2) await sleep(5);
      })(),
      3000,
      'the reconnect',
    );
    await sleep(200);
    assert.equal(published[0], WINDOW, 'the first connection received the whole window');
    assert.equal(published[1], 0, 'no confirmed message is published again on the next connection');
    await client.close({ timeout: 1000 });
  });
}
