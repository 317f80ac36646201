/**
 * Helpers for the robust-client tests (test/client, test/fault, test/serial).
 *
 *   const { clients, resources } = fileFixture();   // clients closed, then resources deleted, in `after`
 *   const client = clients.make({ urls: [...] });
 *   const audit = new AckAudit();                   // debug: audit.line → checks acks like the broker does
 */
import { after } from 'node:test';
import { type Client, type ClientOptions, createClient } from '../../src/index.js';
import { AMQP_URL, Resources } from './broker.js';
import { startProxy, type TcpProxy } from './tcp-proxy.js';

export { AMQP_URL };

/** Makes clients and closes them all at the end of a test file, whatever happened. */
export class Clients {
  private readonly made = new Set<Client>();

  make(options: ClientOptions = {}): Client {
    const client = createClient({ urls: [AMQP_URL], ...options });
    this.made.add(client);
    return client;
  }

  async closeAll(timeout = 2000): Promise<void> {
    const all = [...this.made];
    this.made.clear();
    await Promise.all(all.map((c) => c.close({ timeout }).catch(() => {})));
  }
}

/**
 * What a robust-client test file sets up, torn down in its `after` in the safe order: clients first
 * (they close through the proxies), then the proxies, then the queues and exchanges.
 *
 *   const { clients, resources, brokerProxy } = fileFixture();
 *   const proxy = await brokerProxy();              // a TCP proxy in front of the local broker
 */
export function fileFixture(): { clients: Clients; resources: Resources; brokerProxy: () => Promise<TcpProxy> } {
  const clients = new Clients();
  const resources = new Resources();
  const proxies: TcpProxy[] = [];
  after(async () => {
    try {
      await clients.closeAll();
      await Promise.all(proxies.splice(0).map((p) => p.close()));
    } finally {
      await resources.cleanup();
    }
  });
  const brokerProxy = async (): Promise<TcpProxy> => {
    const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
    proxies.push(proxy);
    return proxy;
  };
  return { clients, resources, brokerProxy };
}

/**
 * Checks, from a frame trace (`debug: audit.line`), that every ack/nack/reject settles deliveries the
 * broker still holds unsettled: a tag acked twice, or a `multiple` ack of a tag already settled, is a
 * violation (the broker would close the channel with 406). Connections are told apart by their
 * `connection.start`, channels by number.
 */
export class AckAudit {
  readonly violations: string[] = [];
  deliveries = 0;
  ackFrames = 0;
  multipleAcks = 0;
  private channels = new Map<number, Set<number>>();
  readonly line = (line: string): void => {
    if (line.startsWith('warren < ')) {
      if (line.includes(' connection.start ')) this.channels = new Map();
      const m = /^warren < ch=(\d+) basic\.deliver (.*)$/.exec(line);
      if (m !== null) {
        const { deliveryTag } = JSON.parse(m[2]!) as { deliveryTag: number };
        this.unsettled(Number(m[1])).add(deliveryTag);
        this.deliveries++;
      }
      return;
    }
    const m = /^warren > ch=(\d+) basic\.(ack|nack|reject) (.*)$/.exec(line);
    if (m === null) {
      if (/^warren > ch=(\d+) channel\.open /.test(line)) this.channels.delete(Number(/ch=(\d+)/.exec(line)![1]));
      return;
    }
    const channel = Number(m[1]);
    const { deliveryTag, multiple } = JSON.parse(m[3]!) as { deliveryTag: number; multiple?: boolean };
    const set = this.unsettled(channel);
    if (m[2] === 'ack') this.ackFrames++;
    if (!set.has(deliveryTag)) {
      this.violations.push(`ch=${channel} ${m[2]} of tag ${deliveryTag}, which is not unsettled`);
      return;
    }
    if (multiple) {
      if (m[2] === 'ack') this.multipleAcks++;
      for (const t of set) if (t <= deliveryTag) set.delete(t);
    } else {
      set.delete(deliveryTag);
    }
  };

  private unsettled(channel: number): Set<number> {
    let set = this.channels.get(channel);
    if (set === undefined) {
      set = new Set();
      this.channels.set(channel, set);
    }
    return set;
  }
}
