// The recovery scenarios' fault injector: a loopback TCP proxy in front of the broker that can destroy every
// connection through it at once, and notes when each new connection arrives (so a reconnect delay is measured
// the same way for every library, outside it). Smaller than test/support/tcp-proxy.ts: no freeze, throttling or
// refusal, since the bench only cuts.

import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

interface Link {
  client: net.Socket;
  upstream: net.Socket;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export class CuttingProxy {
  /** performance.now() of every accepted connection, in order. */
  readonly acceptedAt: number[] = [];
  private readonly links = new Set<Link>();
  private closed = false;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** Listens on 127.0.0.1 (an ephemeral port) and forwards to the broker named by `url`, which must be loopback. */
  static async start(url: string): Promise<CuttingProxy> {
    const u = new URL(url);
    const host = u.hostname;
    const port = u.port === '' ? 5672 : Number(u.port);
    if (!isLoopback(host)) throw new Error(`bench proxy: ${host} is not a loopback address`);
    let self: CuttingProxy | undefined;
    const server = net.createServer((client) => self?.accept(client, host, port)).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('bench proxy: no TCP address');
    self = new CuttingProxy(server, address.port);
    return self;
  }

  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get openConnections(): number {
    return this.links.size;
  }

  private accept(client: net.Socket, host: string, port: number): void {
    if (this.closed) {
      client.destroy();
      return;
    }
    this.acceptedAt.push(performance.now());
    client.setNoDelay(true);
    const upstream = net.connect({ host, port });
    upstream.setNoDelay(true);
    const link: Link = { client, upstream };
    this.links.add(link);
    const drop = (): void => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Destroys every connection through the proxy; returns how many there were. */
  cutAll(): number {
    const n = this.links.size;
    for (const link of [...this.links]) {
      this.links.delete(link);
      link.client.destroy();
      link.upstream.destroy();
    }
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.cutAll();
    await done;
  }
}
