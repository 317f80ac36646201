/**
 * A TCP proxy that records every byte between a client and the broker and splits them into AMQP
 * frames, to check what a client received and sent, byte for byte.
 *
 * @example
 * ```ts
 * const proxy = await startRecordingProxy({ host: '127.0.0.1', port: 5672 });
 * const conn = await connect(proxy.url());
 * // ...
 * const headers = proxy.frames('down', 0).filter((f) => f.type === 2); // content headers it got
 * await proxy.close();
 * ```
 *
 * Listens on 127.0.0.1 only.
 */
import net from 'node:net';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';

export interface RecordedFrame {
  type: number;
  channel: number;
  payload: Buffer;
}

export interface RecordingProxy {
  readonly port: number;
  url(query?: string): string;
  /**
   * Frames of one connection (0 = the first accepted): `'down'` broker → client, `'up'` client →
   * broker.
   */
  frames(direction: 'up' | 'down', connection?: number): RecordedFrame[];
  close(): Promise<void>;
}

const PROTOCOL_HEADER_SIZE = 8;

export interface RecordingProxyOptions {
  /** Changes each broker → client chunk before it is recorded and forwarded (to inject bad bytes). */
  rewriteDown?: (chunk: Buffer) => Buffer;
}

export async function startRecordingProxy(
  target: { host: string; port: number },
  options: RecordingProxyOptions = {},
): Promise<RecordingProxy> {
  const recorded: { up: Buffer[]; down: Buffer[] }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const { up, down } = recorded[recorded.push({ up: [], down: [] }) - 1]!;
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => {
      up.push(Buffer.from(chunk));
      upstream.write(chunk);
    });
    upstream.on('data', (received: Buffer) => {
      const chunk = options.rewriteDown?.(received) ?? received;
      down.push(Buffer.from(chunk));
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  const frames = (direction: 'up' | 'down', connection = 0): RecordedFrame[] => {
    const chunks = recorded[connection];
    if (chunks === undefined) throw new Error(`no connection #${connection} went through the proxy`);
    let bytes = Buffer.concat(chunks[direction]);
    if (direction === 'up') bytes = bytes.subarray(PROTOCOL_HEADER_SIZE);
    const out: RecordedFrame[] = [];
    const decoder = new FrameDecoder(0xffffffff, (type, channel, buf, start, end) => {
      out.push({ type, channel, payload: Buffer.from(buf.subarray(start, end)) });
    });
    decoder.maxHeaderFrameSize = 0xffffffff;
    decoder.push(bytes);
    return out;
  };

  return {
    port,
    url: (query) => `amqp://guest:guest@127.0.0.1:${port}${query === undefined ? '' : `?${query}`}`,
    frames,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
