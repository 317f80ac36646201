/**
 * A ChannelHost with no connection behind it: frames go into a FrameEncoder, and the test runs the
 * flush (before-flush hooks, then the bytes) when it chooses, so a channel can be driven frame by frame.
 */
import type { ChannelHost, PublishTarget } from '../../src/connection/endpoint.js';
import type { AMQPError } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { FrameEncoder } from '../../src/protocol/frame-encoder.js';
import {
  type AMQPMethod,
  decodeMethod,
  type MethodInputByName,
  type MethodName,
} from '../../src/protocol/generated/methods.js';
import type { BasicProperties } from '../../src/protocol/generated/properties.js';
import { Reader } from '../../src/protocol/reader.js';

export class EncoderHost implements ChannelHost {
  readonly encoder: FrameEncoder;
  readonly released: number[] = [];
  unusable: AMQPError | undefined = undefined;
  writable = true;
  operationTimeout = 0;
  private beforeHooks: (() => void)[] = [];
  private afterHooks: (() => void)[] = [];

  constructor(frameMax = 131072) {
    this.encoder = new FrameEncoder(frameMax);
  }

  sendMethod<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): void {
    this.encoder.method(channel, name, args);
  }
  sendPublish(channel: number, t: PublishTarget, properties: BasicProperties | undefined, body: Buffer): void {
    this.encoder.publish(channel, t.exchange, t.routingKey, t.mandatory, properties, body);
  }
  scheduleFlush(): void {}
  flushNow(): void {
    this.flush();
  }
  beforeNextFlush(hook: () => void): void {
    this.beforeHooks.push(hook);
  }
  afterNextFlush(hook: () => void): void {
    this.afterHooks.push(hook);
  }
  get hasPendingWrites(): boolean {
    return this.beforeHooks.length > 0 || this.encoder.pending > 0;
  }
  waitWritable(): Promise<void> {
    return Promise.resolve();
  }
  releaseChannel(id: number): void {
    this.released.push(id);
  }

  /** Runs the pre-flush hooks as the transport does and returns the bytes written since last time. */
  flush(): Buffer[] {
    for (const h of this.beforeHooks.splice(0)) h();
    const chunks = this.encoder.take();
    for (const h of this.afterHooks.splice(0)) h();
    return chunks;
  }

  /** Flushes and decodes the method frames written since last time. */
  methods(): AMQPMethod[] {
    const out: AMQPMethod[] = [];
    const d = new FrameDecoder(131072, (type, _ch, buf, start, end) => {
      if (type !== 1) return;
      const m = decodeMethod(new Reader(buf, start, end));
      if (m) out.push(m);
    });
    for (const c of this.flush()) d.push(c);
    return out;
  }
}
