/**
 * An in-test TCP proxy for fault injection between a client and the broker: cut every connection,
 * freeze traffic (a black hole that keeps sockets open), slow it down, or refuse new connections.
 *
 * @example
 * ```ts
 * const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
 * const conn = await connect(proxy.url());
 * proxy.freeze();            // nothing moves either way; heartbeats stop arriving
 * proxy.thaw();              // held bytes flow again, in order
 * proxy.cutAll();            // every client and upstream socket is destroyed
 * await proxy.refuse(true);  // new connections are reset as soon as they are accepted
 * await proxy.close();
 * ```
 *
 * Listens on 127.0.0.1 only; the target must be a loopback address too.
 */
import net from 'node:net';

export interface ProxyOptions {
  target: { host: string; port: number };
}

/** Throttling applied to both directions; `{}` restores full speed. */
export interface SlowOptions {
  /** Bytes per second per direction and connection (0 or absent: unlimited). */
  bytesPerSec?: number;
  /** Added one-way delay per chunk, in milliseconds. */
  latencyMs?: number;
}

/**
 * How refused connections are treated:
 * - `'reset'`: accepted, then reset at once (the client sees ECONNRESET or an abrupt close);
 * - `'close'`: accepted, then closed cleanly at once (FIN);
 * - `'unlisten'`: the proxy stops listening (the client sees ECONNREFUSED), and listens again on the
 *   same port when refusal is turned off.
 */
export type RefuseMode = 'reset' | 'close' | 'unlisten';

export interface TcpProxy {
  /** The port the proxy listens on, at 127.0.0.1. */
  readonly port: number;
  /** `amqp://user:pass@127.0.0.1:<port>` (guest/guest by default), with an optional query such as 'heartbeat=1'. */
  url(user?: string, pass?: string, query?: string): string;
  /** Client connections currently open through the proxy. */
  readonly connectionCount: number;
  /** Client connections accepted since the start (refused ones included). */
  readonly acceptedCount: number;
  /** Bytes forwarded so far, per direction. */
  readonly bytesForwarded: { readonly up: number; readonly down: number };
  /** Destroys every client and upstream socket (`'reset'` sends RST instead of FIN). */
  cutAll(mode?: 'destroy' | 'reset'): void;
  /** Black hole: sockets stay open, nothing is forwarded either way until thaw(). */
  freeze(): void;
  /** Ends freeze(); bytes held meanwhile are delivered in order. */
  thaw(): void;
  readonly frozen: boolean;
  /** Throttles both directions of every connection, current and future. */
  slow(opts: SlowOptions): void;
  /** Turns refusal of new connections on or off. */
  refuse(on: boolean, mode?: RefuseMode): Promise<void>;
  /** Stops listening and destroys every socket. */
  close(): Promise<void>;
}

const HIGH_WATER = 1 << 20;

interface LinkState {
  frozen: boolean;
  slow: SlowOptions;
  counters: { up: number; down: number };
}

/** One direction of one connection: reads from `src`, holds, paces and writes to `dst`. */
class Pipe {
  private held: { chunk: Buffer; at: number }[] = [];
  private heldBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private nextFree = 0;
  private waitingDrain = false;
  private srcEnded = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly state: LinkState,
    private readonly direction: 'up' | 'down',
  ) {
    src.on('data', (chunk: Buffer) => {
      this.held.push({ chunk, at: Date.now() });
      this.heldBytes += chunk.length;
      this.pump();
    });
    src.on('end', () => {
      this.srcEnded = true;
      this.pump();
    });
    dst.on('drain', () => {
      this.waitingDrain = false;
      this.pump();
    });
  }

  /** Re-evaluates after a state change (freeze, thaw, slow). */
  kick(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.pump();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.held = [];
    this.heldBytes = 0;
  }

  private pump(): void {
    if (this.timer !== null) return;
    const { frozen } = this.state;
    const bytesPerSec = this.state.slow.bytesPerSec ?? 0;
    const latencyMs = this.state.slow.latencyMs ?? 0;
    while (this.held.length > 0 && !frozen && !this.waitingDrain) {
      if (this.dst.destroyed) {
        this.stop();
        return;
      }
      const head = this.held[0]!;
      const now = Date.now();
      let due = head.at + latencyMs;
      if (bytesPerSec > 0) due = Math.max(due, this.nextFree);
      if (due > now) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, due - now);
        break;
      }
      let chunk = head.chunk;
      if (bytesPerSec > 0) {
        const slice = Math.max(1, Math.floor(bytesPerSec / 50)); // 20 ms worth at a time
        if (chunk.length > slice) {
          head.chunk = chunk.subarray(slice);
          chunk = chunk.subarray(0, slice);
        } else {
          this.held.shift();
        }
        this.nextFree = Math.max(now, this.nextFree) + (chunk.length * 1000) / bytesPerSec;
      } else {
        this.held.shift();
      }
      this.heldBytes -= chunk.length;
      this.state.counters[this.direction] += chunk.length;
      if (!this.dst.write(chunk)) this.waitingDrain = true;
    }
    // Backpressure: stop reading while frozen or while much is held.
    if (frozen || this.heldBytes > HIGH_WATER || this.waitingDrain) this.src.pause();
    else this.src.resume();
    if (this.srcEnded && this.held.length === 0 && !frozen && !this.dst.destroyed) this.dst.end();
  }
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  pipes: Pipe[];
}

/** Starts a proxy on 127.0.0.1 (an ephemeral port) forwarding to `target`. */
export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const { host, port: targetPort } = options.target;
  if (!isLoopback(host)) throw new Error(`tcp proxy: target ${host} is not a loopback address`);
  const state: LinkState = { frozen: false, slow: {}, counters: { up: 0, down: 0 } };
  const links = new Set<Link>();
  /** Closes that happened while frozen, passed on at thaw(). */
  let deferred: (() => void)[] = [];
  let refusing: RefuseMode | null = null;
  let accepted = 0;
  let server: net.Server | null = null;
  let listenPort = 0;

  /** Every accepted socket still open, refused ones included, so that close() can end them all. */
  const sockets = new Set<net.Socket>();
  const onConnection = (client: net.Socket): void => {
    accepted++;
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    if (refusing === 'reset') {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    if (refusing === 'close') {
      client.on('error', () => {});
      client.end();
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect({ host, port: targetPort, allowHalfOpen: true });
    upstream.setNoDelay(true);
    const link: Link = { client, upstream, pipes: [] };
    link.pipes.push(new Pipe(client, upstream, state, 'up'), new Pipe(upstream, client, state, 'down'));
    links.add(link);
    let closed = 0;
    const onClose = (self: net.Socket, other: net.Socket) => () => {
      // A side that closed without a clean end (error, reset, destroy) takes the other with it; after
      // a clean end (FIN), its pipe ends the other side once everything held has been written.
      // While frozen nothing passes, not even that: the other side learns of it on thaw().
      if (!self.readableEnded && !other.destroyed) {
        if (state.frozen) deferred.push(() => other.destroy());
        else other.destroy();
      }
      if (++closed === 2) {
        for (const p of link.pipes) p.stop();
        links.delete(link);
      }
    };
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', onClose(client, upstream));
    upstream.on('close', onClose(upstream, client));
  };

  const listen = async (port: number): Promise<number> => {
    const s = net.createServer({ allowHalfOpen: true }, onConnection);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve();
      });
    });
    server = s;
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('tcp proxy: no TCP address');
    return address.port;
  };
  /** Stops accepting at once; with `wait`, also waits until every accepted socket has closed. */
  const unlisten = async (wait: boolean): Promise<void> => {
    const s = server;
    server = null;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    if (wait) await closed;
  };

  listenPort = await listen(0);

  const cut = (mode: 'destroy' | 'reset'): void => {
    deferred = [];
    for (const link of links) {
      for (const p of link.pipes) p.stop();
      for (const sock of [link.client, link.upstream]) {
        if (sock.destroyed) continue;
        if (mode === 'reset' && !sock.connecting) sock.resetAndDestroy();
        else sock.destroy();
      }
    }
  };
  const kickAll = (): void => {
    for (const link of links) for (const p of link.pipes) p.kick();
  };

  return {
    get port() {
      return listenPort;
    },
    url(user = 'guest', pass = 'guest', query?: string) {
      const q = query ? `?${query}` : '';
      return `amqp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@127.0.0.1:${listenPort}${q}`;
    },
    get connectionCount() {
      return links.size;
    },
    get acceptedCount() {
      return accepted;
    },
    get bytesForwarded() {
      return { up: state.counters.up, down: state.counters.down };
    },
    cutAll(mode: 'destroy' | 'reset' = 'destroy') {
      cut(mode);
    },
    freeze() {
      state.frozen = true;
      kickAll();
    },
    thaw() {
      state.frozen = false;
      kickAll();
      const pending = deferred;
      deferred = [];
      for (const close of pending) close();
    },
    get frozen() {
      return state.frozen;
    },
    slow(opts: SlowOptions) {
      for (const [k, v] of Object.entries(opts)) {
        if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new Error(`tcp proxy: bad ${k} ${String(v)}`);
      }
      state.slow = { ...opts };
      kickAll();
    },
    async refuse(on: boolean, mode: RefuseMode = 'reset') {
      const wasUnlistened = refusing === 'unlisten';
      refusing = on ? mode : null;
      if (on && mode === 'unlisten' && server) await unlisten(false);
      // (accepted connections stay; only new ones are refused)
      if ((!on || mode !== 'unlisten') && wasUnlistened && server === null) await listen(listenPort);
    },
    async close() {
      refusing = 'reset';
      const closing = unlisten(true);
      cut('destroy');
      // A refused socket half-closed by end() would keep the server open until its peer answered.
      for (const sock of sockets) sock.destroy();
      await closing;
    },
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
