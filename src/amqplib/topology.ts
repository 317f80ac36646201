/**
 * What a recovering warren/amqplib channel declared, bound, prefetched and consumed, kept in order so
 * that a fresh warren channel can be set up the same way after a reconnect, and the names the broker
 * gave server-named queues (which change on each recovery).
 *
 * @module
 */
import type { Channel as WarrenChannel } from '../channel/channel.js';
import type { Connection as WarrenConnection } from '../connect.js';
import { ChannelClosedByServer, REPLY_CODES } from '../errors.js';
import type { FieldTable } from '../protocol/field-values.js';
import { exchangeArguments, queueArguments } from './args.js';
import type { Options } from './types.js';

/** One thing a channel set up. @internal */
export type TopologyEntry =
  | { kind: 'exchange'; name: string; type: string; options: Options.AssertExchange }
  | { kind: 'queue'; name: string; serverNamed: boolean; options: Options.AssertQueue }
  | { kind: 'bindQueue'; queue: string; source: string; pattern: string; args: FieldTable }
  | { kind: 'bindExchange'; destination: string; source: string; pattern: string; args: FieldTable }
  | { kind: 'prefetch'; count: number; global: boolean }
  | { kind: 'consume'; tag: string; queue: string; options: Options.Consume };

/** A queue or exchange binding. @internal */
export type BindingEntry = Extract<TopologyEntry, { kind: 'bindQueue' | 'bindExchange' }>;

/** Starts the consumer `tag` again on a replayed channel (the channel owns its consumer records). */
export type RestartConsumer = (
  ch: WarrenChannel,
  tag: string,
  queue: string,
  options: Options.Consume,
) => Promise<void>;

/** @internal */
export class Topology {
  private readonly entries: TopologyEntry[] = [];
  private readonly renames = new Map<string, string>();

  /** `enabled` is false when the model does not recover: nothing is then recorded. */
  constructor(private readonly enabled: boolean) {}

  /** The current name of a queue this channel declared with `''` (they change on recovery). */
  queueName(name: string): string {
    return this.renames.get(name) ?? name;
  }

  /** Whether a queue named `name` is recorded already. */
  hasQueue(name: string): boolean {
    return this.entries.some((e) => e.kind === 'queue' && e.name === name);
  }

  record(entry: TopologyEntry): void {
    if (this.enabled) this.entries.push(entry);
  }

  unrecord(match: (entry: TopologyEntry) => boolean): void {
    for (let i = this.entries.length - 1; i >= 0; i--) if (match(this.entries[i]!)) this.entries.splice(i, 1);
  }

  /** Forgets a binding recorded as `b` (whatever its arguments). */
  unrecordBinding(b: BindingEntry): void {
    const target = (e: BindingEntry) => (e.kind === 'bindQueue' ? e.queue : e.destination);
    this.unrecord(
      (e) => e.kind === b.kind && target(e) === target(b) && e.source === b.source && e.pattern === b.pattern,
    );
  }

  /** Sets up on `ch` everything recorded, in order. */
  async replay(conn: WarrenConnection, ch: WarrenChannel, restart: RestartConsumer): Promise<void> {
    for (const entry of [...this.entries]) await this.replayOne(conn, ch, entry, restart);
  }

  private async replayOne(
    conn: WarrenConnection,
    ch: WarrenChannel,
    entry: TopologyEntry,
    restart: RestartConsumer,
  ): Promise<void> {
    switch (entry.kind) {
      case 'exchange':
        await ch.exchangeDeclare(entry.name, entry.type, exchangeOptions(entry.options));
        return;
      case 'queue': {
        if (!entry.serverNamed) {
          await ch.queueDeclare(entry.name, queueOptions(entry.options));
          return;
        }
        // A server-named queue that survived (not exclusive) is used again, so nothing stays stranded in it.
        if (!entry.options.exclusive && (await queueExists(conn, entry.name))) return;
        const { queue } = await ch.queueDeclare('', queueOptions(entry.options));
        this.renames.set(entry.name, queue);
        for (const [from, to] of this.renames) if (to === entry.name) this.renames.set(from, queue);
        entry.name = queue;
        return;
      }
      case 'bindQueue':
        await ch.queueBind(this.queueName(entry.queue), entry.source, entry.pattern, entry.args);
        return;
      case 'bindExchange':
        await ch.exchangeBind(entry.destination, entry.source, entry.pattern, entry.args);
        return;
      case 'prefetch':
        await ch.basicQos(entry.count, { global: entry.global });
        return;
      case 'consume':
        await restart(ch, entry.tag, this.queueName(entry.queue), entry.options);
        return;
    }
  }
}

/** What amqplib's queue and exchange options share, as warren's (durable unless `durable: false`). */
function lifetimeOptions(o: { durable?: boolean | undefined; autoDelete?: boolean | undefined }) {
  return { durable: o.durable ?? true, autoDelete: o.autoDelete === true };
}

/** amqplib's queue options as warren's. */
export function queueOptions(o: Options.AssertQueue) {
  return { ...lifetimeOptions(o), exclusive: o.exclusive === true, arguments: queueArguments(o) };
}

/** amqplib's exchange options as warren's. */
export function exchangeOptions(o: Options.AssertExchange) {
  return { ...lifetimeOptions(o), internal: o.internal === true, arguments: exchangeArguments(o) };
}

/** Whether a queue exists, asked on a channel of its own (a 404 closes the channel that asks). */
async function queueExists(conn: WarrenConnection, queue: string): Promise<boolean> {
  const probe = await conn.openChannel();
  try {
    await probe.queueDeclare(queue, { passive: true });
    return true;
  } catch (err) {
    if (err instanceof ChannelClosedByServer && err.replyCode === REPLY_CODES.NOT_FOUND) return false;
    throw err;
  } finally {
    await probe.close().catch(() => {});
  }
}
