/**
 * The topology registry: what the application declared through the robust client, kept so that it
 * can be declared again, in dependency order, on every new connection (exchanges, then queues, then
 * bindings; consumers and QoS follow in their own parts).
 *
 * A server-named queue (declared with `''`) that outlives the connection (neither exclusive nor
 * auto-delete) is used again under its name: declaring a second one beside it would leave the first
 * bound and collecting copies nobody reads. One that is gone gets a new name; the registry keeps the
 * first name the application saw as an alias, so bindings, consumers and publishes to the default
 * exchange that use it follow the queue to its new name.
 *
 * @module
 */
import type { Channel, ExchangeDeclareOptions, QueueDeclareOptions } from '../channel/channel.js';
import type { Connection } from '../connect.js';
import { AMQPError, ChannelClosedByServer, ChannelError, REPLY_CODES } from '../errors.js';
import type { FieldTable } from '../protocol/field-values.js';

/**
 * An entity the client could not declare again after a reconnect, as reported by the client's
 * `recoveryError` event.
 *
 * @example
 * ```ts
 * client.on('recoveryError', (err, entity) => console.warn(`could not restore ${entity.kind} ${entity.name}`, err));
 * ```
 */
export interface TopologyEntity {
  kind: 'exchange' | 'queue' | 'queue-binding' | 'exchange-binding';
  /** Exchange or queue name; for a binding, its destination. */
  name: string;
  /** For a binding: the source exchange. */
  source?: string;
  /** For a binding: the routing key. */
  routingKey?: string;
}

interface ExchangeRecord {
  name: string;
  type: string;
  options: ExchangeDeclareOptions;
}

interface QueueRecord {
  /** The name the application asked for; `''` for a server-named queue. */
  readonly declared: string;
  /** The first name the application saw; never changes. */
  readonly original: string;
  /** The name on the current connection. */
  name: string;
  options: QueueDeclareOptions;
}

interface BindingRecord {
  kind: 'queue' | 'exchange';
  /** A queue record (queue bindings to a recorded queue) or a name. */
  destination: QueueRecord | string;
  source: string;
  routingKey: string;
  args: FieldTable;
}

/** @internal A binding as the application names it: `destination` is a queue or an exchange. */
export interface Binding {
  kind: 'queue' | 'exchange';
  destination: string;
  source: string;
  routingKey: string;
  args: FieldTable;
}

/** Arguments as a stable string, for recognising the same binding twice. */
function tableKey(args: FieldTable): string {
  const keys = Object.keys(args).sort();
  if (keys.length === 0) return '';
  return JSON.stringify(
    keys.map((k) => [k, args[k]]),
    (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v),
  );
}

/** @internal */
export class Topology {
  private readonly exchanges = new Map<string, ExchangeRecord>();
  /** Queue records by their current name. */
  private readonly queues = new Map<string, QueueRecord>();
  /** Server-named queue records by the first name the application saw. */
  private readonly aliases = new Map<string, QueueRecord>();
  private readonly bindings = new Map<string, BindingRecord>();

  /** Sizes, for tests and leak checks. */
  get size(): { exchanges: number; queues: number; bindings: number } {
    return { exchanges: this.exchanges.size, queues: this.queues.size, bindings: this.bindings.size };
  }

  private lookup(name: string): QueueRecord | undefined {
    return this.aliases.get(name) ?? this.queues.get(name);
  }

  /** The queue's name on the current connection. */
  resolveQueue(name: string): string {
    if (this.aliases.size === 0) return name;
    return this.aliases.get(name)?.name ?? name;
  }

  /** True when the name belongs to a recorded queue declared auto-delete. */
  isAutoDeleteQueue(name: string): boolean {
    return this.lookup(name)?.options.autoDelete === true;
  }

  recordExchange(name: string, type: string, options: ExchangeDeclareOptions): void {
    if (options.passive || name === '' || name.startsWith('amq.')) return;
    this.exchanges.set(name, { name, type, options: { ...options } });
  }

  /** Records a declared queue; `declared` is what was asked for, `name` what the broker answered. */
  recordQueue(declared: string, name: string, options: QueueDeclareOptions): void {
    if (options.passive) return;
    const existing = this.lookup(name);
    if (existing !== undefined) {
      existing.options = { ...options };
      return;
    }
    const record: QueueRecord = { declared, original: name, name, options: { ...options } };
    this.queues.set(name, record);
    if (declared === '') this.aliases.set(name, record);
  }

  private bindingKey(binding: Binding): string {
    const { kind, destination, source, routingKey, args } = binding;
    const record = kind === 'queue' ? this.lookup(destination) : undefined;
    const dest = record === undefined ? destination : `\u0000${record.original}`;
    return `${kind}\u0001${dest}\u0001${source}\u0001${routingKey}\u0001${tableKey(args)}`;
  }

  recordBinding(binding: Binding): void {
    const { kind, destination, source, routingKey, args } = binding;
    const record = kind === 'queue' ? this.lookup(destination) : undefined;
    this.bindings.set(this.bindingKey(binding), {
      kind,
      destination: record ?? destination,
      source,
      routingKey,
      args: { ...args },
    });
  }

  removeBinding(binding: Binding): void {
    this.bindings.delete(this.bindingKey(binding));
  }

  /** Forgets a queue and its bindings (deleted by the application, or auto-deleted). */
  removeQueue(name: string): void {
    const record = this.lookup(name);
    const current = record?.name ?? name;
    if (record !== undefined) {
      this.queues.delete(record.name);
      this.aliases.delete(record.original);
    }
    for (const [key, b] of this.bindings) {
      if (b.kind !== 'queue') continue;
      if (b.destination === record || b.destination === current) this.bindings.delete(key);
    }
  }

  /** Forgets an exchange and every binding from or to it, as the broker does. */
  removeExchange(name: string): void {
    this.exchanges.delete(name);
    for (const [key, b] of this.bindings) {
      if (b.source === name || (b.kind === 'exchange' && b.destination === name)) this.bindings.delete(key);
    }
  }

  /**
   * Declares everything again on `connection` (or only the records in `only`, as a previous replay
   * returned them), in dependency order, on one short-lived channel that is replaced when the broker
   * closes it. An entity the broker refuses is reported through `report` and skipped; the skipped
   * records are returned, so that they can be tried again. A dying connection ends the replay with
   * its error.
   */
  async replay(
    connection: Connection,
    report: (error: AMQPError, entity: TopologyEntity) => void,
    only?: ReadonlySet<object>,
  ): Promise<Set<object>> {
    const failed = new Set<object>();
    if (this.exchanges.size === 0 && this.queues.size === 0 && this.bindings.size === 0) return failed;
    let channel: Channel | undefined;
    /** The replay's channel, opened again when the broker closed it. */
    const open = async (): Promise<Channel> => {
      if (channel === undefined || !channel.isOpen) channel = await connection.openChannel();
      return channel;
    };
    const run = async (record: object, entity: TopologyEntity, op: (ch: Channel) => Promise<void>): Promise<void> => {
      if (only !== undefined && !only.has(record)) return;
      try {
        await op(await open());
      } catch (err) {
        // A dead connection ends the replay; the client reconnects and replays from the start.
        if (!connection.isOpen) throw err;
        failed.add(record);
        report(asAMQPError(err), entity);
      }
    };
    for (const x of [...this.exchanges.values()]) {
      await run(x, { kind: 'exchange', name: x.name }, (ch) => ch.exchangeDeclare(x.name, x.type, x.options));
    }
    for (const q of [...this.queues.values()]) {
      await run(q, { kind: 'queue', name: q.declared === '' ? q.original : q.name }, async (ch) => {
        if (q.declared === '' && (await this.stillThere(q, ch))) return;
        const { queue } = await (await open()).queueDeclare(q.declared, q.options);
        if (queue !== q.name) {
          this.queues.delete(q.name);
          q.name = queue;
          this.queues.set(queue, q);
        }
      });
    }
    for (const b of [...this.bindings.values()]) {
      const destination = typeof b.destination === 'string' ? b.destination : b.destination.name;
      const entity: TopologyEntity = {
        kind: b.kind === 'queue' ? 'queue-binding' : 'exchange-binding',
        name: destination,
        source: b.source,
        routingKey: b.routingKey,
      };
      await run(b, entity, (ch) =>
        b.kind === 'queue'
          ? ch.queueBind(destination, b.source, b.routingKey, b.args)
          : ch.exchangeBind(destination, b.source, b.routingKey, b.args),
      );
    }
    if (channel?.isOpen) await channel.close();
    return failed;
  }

  /**
   * Whether the server-named queue of `record` outlived the last connection and is to be used again.
   * An exclusive one never does (it belongs to the dead connection and goes with it). An auto-delete
   * one that still shows consumers is the dead connection's, about to be deleted with them. A
   * passive declare answers the rest: 404 closes `ch`, and the queue is declared anew.
   */
  private async stillThere(record: QueueRecord, ch: Channel): Promise<boolean> {
    if (record.options.exclusive) return false;
    try {
      const { consumerCount } = await ch.queueDeclare(record.name, { passive: true });
      return !(record.options.autoDelete && consumerCount > 0);
    } catch (err) {
      if (
        err instanceof ChannelClosedByServer &&
        (err.replyCode === REPLY_CODES.NOT_FOUND || err.replyCode === REPLY_CODES.RESOURCE_LOCKED)
      )
        return false;
      throw err;
    }
  }
}

/** @internal Anything thrown, as an `AMQPError` (a non-warren error is wrapped, keeping it as `cause`). */
export function asAMQPError(err: unknown): AMQPError {
  if (err instanceof AMQPError) return err;
  return new ChannelError(err instanceof Error ? err.message : String(err), { cause: err });
}
