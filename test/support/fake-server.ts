/**
 * A scripted fake AMQP 0-9-1 server for tests: it plays the broker's part with warren's own codec,
 * so a test can make it do what a real broker will not do on demand (malformed or oversize frames,
 * silence, odd handshakes).
 *
 * @example
 * ```ts
 * const server = await startFakeServer(async (s) => {
 *   await s.handshake();
 *   const open = await s.recvMethod('channel.open');
 *   s.send(open.channel, 'channel.open-ok', {});
 *   await s.expectClose();
 * });
 * const conn = await connect(server.url);
 * ...
 * await server.done();   // rethrows the first error a script hit (e.g. a recv timeout)
 * await server.close();
 * ```
 *
 * Every wait is bounded (5 s by default) and fails with a message naming what was awaited and the
 * last frames received, so a test never hangs. Listens on 127.0.0.1 only.
 */
import net from 'node:net';
import type { FieldTable } from '../../src/protocol/field-values.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { FrameEncoder } from '../../src/protocol/frame-encoder.js';
import {
  FRAME_BODY,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  PROTOCOL_HEADER,
} from '../../src/protocol/generated/constants.js';
import type {
  AMQPMethod,
  MethodArgsByName,
  MethodInputByName,
  MethodName,
} from '../../src/protocol/generated/methods.js';
import type { BasicProperties } from '../../src/protocol/generated/properties.js';
import {
  contentFrames,
  decodeFrame,
  describeFrame,
  methodPayload,
  ordinaryReply,
  rabbitServerProperties,
  type ReceivedFrame,
  replyFrame,
} from './frames.js';

export type { ReceivedFrame };

/** Default time limit of every wait, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** A method received, with its channel and typed arguments. */
export interface ReceivedMethod<N extends MethodName = MethodName> {
  channel: number;
  name: N;
  args: MethodArgsByName[N];
}

/** A whole message received: its method (e.g. basic.publish), properties and body. */
export interface ReceivedContent<N extends MethodName = MethodName> extends ReceivedMethod<N> {
  properties: BasicProperties;
  body: Buffer;
  /** Number of body frames the body came in. */
  bodyFrames: number;
}

/** What `recvInput` returns: a method, or a publish with its whole content. */
export type Input = { kind: 'method'; m: ReceivedMethod } | { kind: 'publish'; c: ReceivedContent<'basic.publish'> };

export interface WaitOptions {
  /** Time limit in milliseconds (default 5000). */
  timeoutMs?: number;
}

export interface HandshakeOptions {
  /** Proposed frame-max (default 131072). */
  frameMax?: number;
  /** Proposed channel-max (default 2047, as RabbitMQ). */
  channelMax?: number;
  /** Proposed heartbeat in seconds (default 60, as RabbitMQ). */
  heartbeat?: number;
  /** Merged over the RabbitMQ 3.10-like defaults (a `capabilities` entry replaces the default one). */
  serverProperties?: FieldTable;
  /** Mechanisms offered (default 'PLAIN AMQPLAIN'). */
  mechanisms?: string;
  locales?: string;
}

export interface HandshakeResult {
  startOk: MethodArgsByName['connection.start-ok'];
  tuneOk: MethodArgsByName['connection.tune-ok'];
  open: MethodArgsByName['connection.open'];
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  /** What the script is waiting for, for error messages. */
  what?: string;
}

/** The server's side of one accepted connection, as seen by a script. */
export class FakeConnection {
  /** Every frame received, in order (also those consumed by recv). */
  readonly received: ReceivedFrame[] = [];
  /** The protocol header bytes received so far (8 once complete). */
  header: Buffer = Buffer.alloc(0);
  /** Total bytes received from the client. */
  bytesReceived = 0;
  /** Error that ended the incoming stream (bad frame from the client), if any. */
  streamError: Error | undefined;
  /** The script's failure, if it failed. */
  scriptError: Error | undefined;
  /** Whether the socket has closed. */
  isClosed = false;
  /** Resolves once the socket has closed. */
  readonly closed: Promise<void>;
  /** Encoder for what this side sends; its frameMax follows the handshake. */
  readonly encoder = new FrameEncoder(131072);

  private readonly inbox: ReceivedFrame[] = [];
  private readonly frameWaiters: Waiter<ReceivedFrame>[] = [];
  private readonly headerWaiters: Waiter<Buffer>[] = [];
  private readonly decoder: FrameDecoder;
  private silenced = false;

  constructor(
    /** The accepted socket. */
    readonly socket: net.Socket,
    /** 0-based order of acceptance. */
    readonly index: number,
    private readonly defaultTimeoutMs: number,
    maxFrameSize: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameSize, (type, channel, buf, start, end) =>
      this.onFrame(type, channel, Buffer.from(buf.subarray(start, end))),
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {}); // 'close' follows; tests look at what the client did instead
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        this.failWaiters(
          (what) => `fake server: the client closed connection #${this.index} before ${what}${this.tail()}`,
        );
        resolve();
      });
    });
  }

  // ---------------------------------------------------------------------------- receiving
  private onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    let off = 0;
    if (this.header.length < 8) {
      off = Math.min(8 - this.header.length, chunk.length);
      this.header = Buffer.concat([this.header, chunk.subarray(0, off)]);
      if (this.header.length === 8) for (const w of this.headerWaiters.splice(0)) settle(w, this.header);
    }
    if (off >= chunk.length || this.streamError !== undefined) return;
    try {
      this.decoder.push(chunk.subarray(off));
    } catch (err) {
      this.streamError = err instanceof Error ? err : new Error(String(err));
      const message = this.streamError.message;
      this.failWaiters((what) => `fake server: bad bytes from the client while waiting for ${what}: ${message}`);
    }
  }

  private onFrame(type: number, channel: number, payload: Buffer): void {
    const frame = decodeFrame(type, channel, payload);
    this.received.push(frame);
    const w = this.frameWaiters.shift();
    if (w) settle(w, frame);
    else this.inbox.push(frame);
  }

  private failWaiters(message: (what: string) => string): void {
    for (const w of this.frameWaiters.splice(0)) fail(w, new Error(message(w.what ?? 'a frame')));
    for (const w of this.headerWaiters.splice(0)) fail(w, new Error(message('the protocol header')));
  }

  private tail(): string {
    const last = this.received.slice(-6).map(describeFrame);
    return last.length === 0 ? '; no frame received' : `; last frames received: ${last.join(', ')}`;
  }

  /** Waits for the 8-byte protocol header and checks it is AMQP 0-9-1's. */
  expectHeader(opts: WaitOptions = {}): Promise<Buffer> {
    const check = (h: Buffer): Buffer => {
      if (!h.equals(PROTOCOL_HEADER)) {
        throw new Error(`fake server: expected the AMQP 0-9-1 protocol header, got <${h.toString('hex')}>`);
      }
      return h;
    };
    if (this.header.length === 8) return Promise.resolve().then(() => check(this.header));
    if (this.isClosed)
      return Promise.reject(new Error('fake server: the client closed before sending a protocol header'));
    const ms = opts.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove(this.headerWaiters, waiter);
        reject(
          new Error(
            `fake server: no protocol header within ${ms} ms (got ${this.header.length} of 8 bytes: <${this.header.toString('hex')}>)`,
          ),
        );
      }, ms);
      const waiter: Waiter<Buffer> = { resolve, reject, timer };
      this.headerWaiters.push(waiter);
    }).then(check);
  }

  /** The next frame from the client, heartbeats included. */
  recv(opts: WaitOptions = {}): Promise<ReceivedFrame> {
    return this.nextFrame('any frame', opts);
  }

  private nextFrame(what: string, opts: WaitOptions): Promise<ReceivedFrame> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.streamError)
      return Promise.reject(new Error(`fake server: bad bytes from the client: ${this.streamError.message}`));
    if (this.isClosed)
      return Promise.reject(
        new Error(`fake server: the client closed connection #${this.index} before ${what}${this.tail()}`),
      );
    const ms = opts.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise<ReceivedFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove(this.frameWaiters, waiter);
        reject(
          new Error(`fake server: no frame from the client within ${ms} ms while waiting for ${what}${this.tail()}`),
        );
      }, ms);
      const waiter: Waiter<ReceivedFrame> = { resolve, reject, timer, what };
      this.frameWaiters.push(waiter);
    });
  }

  /**
   * The next method from the client, skipping heartbeats. With a name, anything else is an error
   * (the message says what came instead).
   */
  async recvMethod<N extends MethodName>(name?: N, opts: WaitOptions = {}): Promise<ReceivedMethod<N>> {
    const what = name ?? 'a method';
    for (;;) {
      const f = await this.nextFrame(what, opts);
      if (f.type === FRAME_HEARTBEAT) continue;
      if (f.type !== FRAME_METHOD || f.method === undefined) {
        throw new Error(`fake server: expected ${what}, got ${describeFrame(f)}`);
      }
      if (name !== undefined && f.method.name !== name) {
        throw new Error(`fake server: expected ${name}, got ${describeFrame(f)}`);
      }
      return { channel: f.channel, name: f.method.name as N, args: f.method.args as MethodArgsByName[N] };
    }
  }

  /** A content-carrying method (default basic.publish) with its header and whole body. */
  async recvContent<N extends MethodName = 'basic.publish'>(
    name: N = 'basic.publish' as N,
    opts: WaitOptions = {},
  ): Promise<ReceivedContent<N>> {
    return this.contentOf(await this.recvMethod(name, opts), opts);
  }

  /**
   * The next thing the client sent, skipping heartbeats: a method, or a basic.publish with its
   * header and body (which `recvMethod` alone cannot skip).
   */
  async recvInput(opts: WaitOptions = {}): Promise<Input> {
    const m = await this.recvMethod(undefined, opts);
    if (m.name !== 'basic.publish') return { kind: 'method', m };
    return { kind: 'publish', c: await this.contentOf(m as ReceivedMethod<'basic.publish'>, opts) };
  }

  private async contentOf<N extends MethodName>(m: ReceivedMethod<N>, opts: WaitOptions): Promise<ReceivedContent<N>> {
    const name = m.name;
    let h: ReceivedFrame;
    do h = await this.nextFrame(`the content header of ${name}`, opts);
    while (h.type === FRAME_HEARTBEAT);
    if (h.type !== FRAME_HEADER || h.header === undefined || h.channel !== m.channel) {
      throw new Error(
        `fake server: expected the content header of ${name} on channel ${m.channel}, got ${describeFrame(h)}`,
      );
    }
    const parts: Buffer[] = [];
    let size = 0;
    while (size < h.header.bodySize) {
      const b = await this.nextFrame(`body of ${name} (${size} of ${h.header.bodySize} B so far)`, opts);
      if (b.type === FRAME_HEARTBEAT) continue;
      if (b.type !== FRAME_BODY || b.channel !== m.channel) {
        throw new Error(`fake server: expected a body frame on channel ${m.channel}, got ${describeFrame(b)}`);
      }
      parts.push(b.payload);
      size += b.payload.length;
    }
    if (size !== h.header.bodySize) {
      throw new Error(`fake server: body of ${size} B, but the header announced ${h.header.bodySize} B`);
    }
    return { ...m, properties: h.header.properties, body: Buffer.concat(parts), bodyFrames: parts.length };
  }

  // ------------------------------------------------------------------------------ sending
  private write(chunks: readonly Buffer[]): void {
    if (this.silenced || this.socket.destroyed) return;
    for (const c of chunks) this.socket.write(Buffer.from(c));
  }

  /** Sends one method frame. */
  send<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): void {
    this.encoder.method(channel, name, args);
    this.write(this.encoder.take());
  }

  /** Sends a content-carrying method (basic.deliver, basic.get-ok, basic.return) with header and body. */
  sendContent<N extends 'basic.deliver' | 'basic.get-ok' | 'basic.return' | 'basic.publish'>(
    channel: number,
    name: N,
    args: MethodInputByName[N],
    properties: BasicProperties,
    body: Buffer,
  ): void {
    this.write(contentFrames(channel, methodPayload(name, args), body, this.encoder.frameMax, properties));
  }

  sendHeartbeat(): void {
    this.encoder.heartbeat();
    this.write(this.encoder.take());
  }

  /** Sends bytes as they are (malformed frames, partial frames...). */
  sendRaw(buf: Buffer): void {
    this.write([buf]);
  }

  // ------------------------------------------------------------------------------ scripts
  /**
   * Plays RabbitMQ's part of the handshake: start, (start-ok), tune, (tune-ok), (open), open-ok.
   * The encoder's frame-max follows the negotiated value.
   */
  async handshake(opts: HandshakeOptions = {}): Promise<HandshakeResult> {
    await this.expectHeader();
    const serverProperties: FieldTable = { ...rabbitServerProperties(), ...opts.serverProperties };
    this.send(0, 'connection.start', {
      versionMajor: 0,
      versionMinor: 9,
      serverProperties,
      mechanisms: opts.mechanisms ?? 'PLAIN AMQPLAIN',
      locales: opts.locales ?? 'en_US',
    });
    const startOk = (await this.recvMethod('connection.start-ok')).args;
    const frameMax = opts.frameMax ?? 131072;
    this.send(0, 'connection.tune', {
      channelMax: opts.channelMax ?? 2047,
      frameMax,
      heartbeat: opts.heartbeat ?? 60,
    });
    const tuneOk = (await this.recvMethod('connection.tune-ok')).args;
    const negotiated = tuneOk.frameMax === 0 ? frameMax : tuneOk.frameMax;
    if (negotiated > 0) this.encoder.frameMax = negotiated;
    const open = (await this.recvMethod('connection.open')).args;
    this.send(0, 'connection.open-ok', { knownHosts: '' });
    return { startOk, tuneOk, open };
  }

  /** Waits for the client's connection.close, answers close-ok, and returns its arguments. */
  async expectClose(opts: WaitOptions = {}): Promise<MethodArgsByName['connection.close']> {
    const { args } = await this.recvMethod('connection.close', opts);
    this.send(0, 'connection.close-ok', {});
    return args;
  }

  /** Opens channels as the client asks: answers each channel.open with open-ok. Returns the channel. */
  async acceptChannel(opts: WaitOptions = {}): Promise<number> {
    const { channel } = await this.recvMethod('channel.open', opts);
    this.send(channel, 'channel.open-ok', {});
    return channel;
  }

  // -------------------------------------------------------------------------------- faults
  /** Stops reading from the socket and sends nothing more: the peer looks dead. */
  silence(): void {
    this.silenced = true;
    this.socket.pause();
  }

  /** Half-closes the socket (FIN) after what was written. */
  end(): void {
    this.socket.end();
  }

  /** Drops the socket at once (RST if data is pending). */
  destroy(): void {
    this.socket.destroy();
  }
}

/** What a fake server runs for each accepted connection. */
export type FakeScript = (s: FakeConnection) => Promise<void> | void;

export interface FakeServerOptions {
  /** Default time limit of every wait (default 5000 ms). */
  timeoutMs?: number;
  /** Largest frame accepted from the client (default 1 MiB: the harness is lenient). */
  maxFrameSize?: number;
}

export interface FakeServer {
  readonly port: number;
  /** `amqp://guest:guest@127.0.0.1:<port>` */
  readonly url: string;
  /** Accepted connections, in order. */
  readonly connections: readonly FakeConnection[];
  /** Waits for the next connection to be accepted (or returns one not yet taken). */
  nextConnection(opts?: WaitOptions): Promise<FakeConnection>;
  /**
   * Waits until at least `connections` (default 1) clients have connected and every script started
   * by then has finished; rethrows the first script error.
   */
  done(opts?: WaitOptions & { connections?: number }): Promise<void>;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a fake server on 127.0.0.1 (an ephemeral port); `script` runs once per accepted socket. */
export async function startFakeServer(script?: FakeScript, options: FakeServerOptions = {}): Promise<FakeServer> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const connections: FakeConnection[] = [];
  const scripts: Promise<void>[] = [];
  const untaken: FakeConnection[] = [];
  const takers: Waiter<FakeConnection>[] = [];
  const acceptListeners = new Set<() => void>();

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const conn = new FakeConnection(socket, connections.length, timeoutMs, options.maxFrameSize ?? 1 << 20);
    connections.push(conn);
    const taker = takers.shift();
    if (taker) settle(taker, conn);
    else untaken.push(conn);
    if (script) {
      const run = (async () => script(conn))().catch((err: unknown) => {
        conn.scriptError = err instanceof Error ? err : new Error(String(err));
        socket.destroy(); // the client sees a dead peer rather than a hang
      });
      scripts.push(run);
    }
    for (const l of acceptListeners) l();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake server: no TCP address');
  const port = address.port;

  return {
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    connections,
    nextConnection(opts: WaitOptions = {}) {
      const ready = untaken.shift();
      if (ready) return Promise.resolve(ready);
      const ms = opts.timeoutMs ?? timeoutMs;
      return new Promise<FakeConnection>((resolve, reject) => {
        const timer = setTimeout(() => {
          remove(takers, waiter);
          reject(new Error(`fake server: no client connected within ${ms} ms (${connections.length} so far)`));
        }, ms);
        const waiter: Waiter<FakeConnection> = { resolve, reject, timer };
        takers.push(waiter);
      });
    },
    async done(opts: WaitOptions & { connections?: number } = {}) {
      const ms = opts.timeoutMs ?? timeoutMs * 2;
      const want = opts.connections ?? 1;
      let timer: NodeJS.Timeout | undefined;
      let listener: (() => void) | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                connections.length < want
                  ? `fake server: ${connections.length} of ${want} expected clients connected within ${ms} ms`
                  : `fake server: scripts still running after ${ms} ms`,
              ),
            ),
          ms,
        );
      });
      const accepted = new Promise<void>((resolve) => {
        listener = () => {
          if (connections.length >= want) resolve();
        };
        acceptListeners.add(listener);
        listener();
      });
      try {
        await Promise.race([accepted, timeout]);
        await Promise.race([Promise.all(scripts), timeout]);
      } finally {
        clearTimeout(timer);
        if (listener) acceptListeners.delete(listener);
      }
      const failed = connections.find((c) => c.scriptError !== undefined);
      if (failed?.scriptError) throw failed.scriptError;
    },
    async close() {
      for (const t of takers.splice(0)) fail(t, new Error('fake server closed'));
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of connections) c.destroy();
      await closing;
    },
  };
}

// ------------------------------------------------------------------------ the broker's part

export interface BrokerHooks {
  /**
   * Sees every input first; return true when it handled it (the default answer is then not sent),
   * or 'stop' to end the loop.
   */
  onInput?: (input: Input, s: FakeConnection) => boolean | 'stop' | Promise<boolean | 'stop'>;
}

/**
 * Plays the ordinary broker after the handshake: answers what `ordinaryReply` answers; acks no
 * publish (tests decide); answers connection.close with close-ok and returns. Also returns when the
 * client goes away.
 */
export async function playBroker(s: FakeConnection, hooks: BrokerHooks = {}): Promise<void> {
  let tags = 0;
  const nextTag = () => `ctag-${++tags}`;
  for (;;) {
    let input: Input;
    try {
      input = await s.recvInput({ timeoutMs: 10_000 });
    } catch (err) {
      if (s.isClosed) return;
      throw err;
    }
    const handled = (await hooks.onInput?.(input, s)) ?? false;
    if (handled === 'stop') return;
    if (handled || input.kind !== 'method') continue;
    const { channel, name, args } = input.m;
    if (name === 'connection.close') {
      s.send(0, 'connection.close-ok', {});
      s.end();
      return;
    }
    const reply = ordinaryReply({ name, args } as AMQPMethod, nextTag);
    if (reply !== undefined) s.sendRaw(replyFrame(channel, reply));
  }
}

/** The frames the client sent after its last `name` method (all of them if it sent none). */
export function framesAfter(s: FakeConnection, name: MethodName): ReceivedFrame[] {
  let i = s.received.length - 1;
  while (i >= 0 && s.received[i]?.method?.name !== name) i--;
  return s.received.slice(i + 1);
}

function settle<T>(w: Waiter<T>, v: T): void {
  clearTimeout(w.timer);
  w.resolve(v);
}
function fail<T>(w: Waiter<T>, e: Error): void {
  clearTimeout(w.timer);
  w.reject(e);
}
function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
