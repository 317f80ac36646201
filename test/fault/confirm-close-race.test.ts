/**
 * Nothing confirmed is sent again, against the real broker: `rabbitmqctl close_connection` closes
 * the publisher's connection in the middle of a burst, and RabbitMQ writes its last acks and the
 * connection.close together. From the client's own frame trace, no message whose ack the client
 * read is ever published again, and every duplicate the queue holds is a message that was
 * unconfirmed when its connection closed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectionPid, rabbitmqctl, uniqueName, withConnection } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import { nextEvent } from '../support/wait.js';

/** Messages published at full speed while waiting for the close. */
const FULL_SPEED = 45_000;
/** Published after the close was seen, so that the burst goes on across the reconnect. */
const AFTER_CLOSE = 3000;
/** Connections closed by the broker during the burst, one after the other. */
const CLOSES = 2;
const { clients, resources } = fileFixture();

/** Follows the publisher's confirms in a frame trace: which ids were acked, and which were sent again after that. */
class ConfirmAudit {
  /** Ids whose ack the client read. */
  readonly confirmed = new Set<string>();
  /** Ids published again after their ack was read: must stay empty. */
  readonly resentAfterConfirm: string[] = [];
  /** Ids sent on a connection and not acked on it when it closed. */
  readonly unconfirmedAtClose = new Set<string>();
  closes = 0;
  private sent = new Map<number, { next: number; ids: Map<number, string> }>();
  private publishing = -1;

  readonly line = (line: string): void => {
    let m: RegExpExecArray | null;
    if (line.startsWith('warren < ch=0 connection.start ')) {
      this.endConnection();
      return;
    }
    if ((m = /^warren < ch=(\d+) confirm\.select-ok/.exec(line)) !== null) {
      this.sent.set(Number(m[1]), { next: 1, ids: new Map() });
    } else if ((m = /^warren < ch=(\d+) basic\.(ack|nack) (.*)$/.exec(line)) !== null) {
      const ch = this.sent.get(Number(m[1]));
      const { deliveryTag, multiple } = JSON.parse(m[3]!) as { deliveryTag: number; multiple: boolean };
      if (ch === undefined) return;
      for (const [tag, id] of ch.ids) {
        if (tag === deliveryTag || (multiple && tag < deliveryTag)) {
          if (m[2] === 'ack') this.confirmed.add(id);
          ch.ids.delete(tag);
        }
      }
    } else if ((m = /^warren > ch=(\d+) basic\.publish /.exec(line)) !== null) {
      this.publishing = Number(m[1]);
    } else if ((m = /^warren > ch=(\d+) header size=\d+ (.*)$/.exec(line)) !== null && this.publishing >= 0) {
      const ch = this.sent.get(this.publishing);
      this.publishing = -1;
      const id = (JSON.parse(m[2]!) as { messageId?: string }).messageId;
      if (ch === undefined || id === undefined) return;
      if (this.confirmed.has(id)) this.resentAfterConfirm.push(id);
      ch.ids.set(ch.next++, id);
    }
  };

  endConnection(): void {
    for (const ch of this.sent.values()) for (const id of ch.ids.values()) this.unconfirmedAtClose.add(id);
    if (this.sent.size > 0) this.closes++;
    this.sent = new Map();
  }
}

test('rabbitmqctl close_connection during a burst: no message whose confirm was read is published again', {
  timeout: 60_000,
}, async () => {
  const name = uniqueName('confirm-close-race');
  const audit = new ConfirmAudit();
  const client = clients.make({ name, debug: audit.line, backoff: { initialDelay: 10, maxDelay: 50 } });
  client.on('disconnect', () => {});
  const queue = resources.queue('confirm-close-race');
  await client.declareQueue(queue);
  const pub = client.publisher();
  await pub.publish('', queue, 'warm-up', { messageId: 'warm-up' });
  const firstPid = await connectionPid(name);

  let sent = 0;
  /** `sent` when the last of the CLOSES closes was seen, -1 before. */
  let closedAt = -1;
  const closing = (async () => {
    for (let k = 0; k < CLOSES; k++) {
      const pid = k === 0 ? firstPid : await connectionPid(name);
      const disconnected = nextEvent(client, 'disconnect', 30_000);
      const connected = nextEvent(client, 'connect', 30_000);
      await rabbitmqctl('close_connection', pid, 'test: close during a burst');
      await disconnected;
      await connected;
    }
    closedAt = sent;
  })();
  const publishes: Promise<void>[] = [];
  // At full speed until the closes (acks are in flight all the time, so a close is likely to come in
  // the same read as some), then AFTER_CLOSE more. Should rabbitmqctl be slow to act, the burst slows
  // to a trickle after FULL_SPEED messages rather than grow without bound.
  const deadline = Date.now() + 30_000;
  while ((closedAt < 0 || sent < closedAt + AFTER_CLOSE) && Date.now() < deadline) {
    const trickle = closedAt < 0 && sent >= FULL_SPEED;
    const batch = trickle ? 10 : 500;
    for (let i = 0; i < batch; i++, sent++)
      publishes.push(pub.publish('', queue, `m${sent}`, { messageId: String(sent) }));
    await sleep(trickle ? 10 : 0);
    while (pub.pendingCount > 3000) await sleep(1);
  }
  await closing;
  await Promise.all(publishes);
  assert.ok(closedAt >= 0 && closedAt < sent, `the connection closed during the burst (at ${closedAt} of ${sent})`);
  assert.equal(audit.closes, CLOSES, 'the trace saw each connection end');

  // What the queue holds, per id.
  const counts = await withConnection(async (conn) => {
    const ch = await conn.openChannel();
    const inQueue = (await ch.queueDeclare(queue, { passive: true })).messageCount;
    const byId = new Map<string, number>();
    let n = 0;
    await new Promise<void>((resolve) => {
      void ch.basicConsume(queue, { noAck: true }, (msg) => {
        const id = msg.properties.messageId!;
        byId.set(id, (byId.get(id) ?? 0) + 1);
        if (++n === inQueue) resolve();
      });
    });
    await ch.close();
    return byId;
  });
  const duplicates = [...counts].filter(([, c]) => c > 1).map(([id]) => id);
  console.log(
    `${sent} published, ${CLOSES} closes by ${closedAt}; ${audit.confirmed.size} confirms read, ` +
      `${audit.unconfirmedAtClose.size} unconfirmed at the close, ${duplicates.length} duplicates in the queue`,
  );
  assert.equal(counts.size, sent + 1, 'every message is in the queue');
  assert.deepEqual(
    audit.resentAfterConfirm.slice(0, 10),
    [],
    'no message is published again after its confirm was read',
  );
  const unexplained = duplicates.filter((id) => !audit.unconfirmedAtClose.has(id));
  assert.deepEqual(unexplained.slice(0, 10), [], 'every duplicate was unconfirmed when its connection closed');
  assert.ok(duplicates.length <= audit.unconfirmedAtClose.size);
});
