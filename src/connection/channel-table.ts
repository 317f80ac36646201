/**
 * The channels of one connection by id: allocation (the lowest free id after the last one given,
 * wrapping at channel-max), release, and the lookup that routes incoming frames.
 *
 * @module
 */
import { ChannelError, FrameError } from '../errors.js';
import { REPLY_CODES } from '../protocol/generated/constants.js';
import type { ChannelEndpoint } from './endpoint.js';

export class ChannelTable {
  private readonly channels: (ChannelEndpoint | undefined)[] = [];
  private lastId = 0;
  private count = 0;

  /** Allocates an id below `max` and registers the endpoint `create` makes for it. */
  allocate<T extends ChannelEndpoint>(max: number, create: (id: number) => T): T {
    if (this.count >= max) {
      throw new ChannelError(`all ${max} channels the broker allows are in use; close some or raise channel_max`);
    }
    let id = this.lastId;
    do {
      id = id >= max ? 1 : id + 1;
    } while (this.channels[id] !== undefined);
    this.lastId = Math.max(this.lastId, id);
    const endpoint = create(id);
    this.channels[id] = endpoint;
    this.count++;
    return endpoint;
  }

  release(id: number): void {
    if (this.channels[id] === undefined) return;
    this.channels[id] = undefined;
    this.count--;
  }

  /**
   * The endpoint a frame for channel `id` goes to. Frames for a channel never opened are a
   * protocol error; after a close they are dropped (`undefined`).
   */
  route(id: number, what: string, channelMax: number): ChannelEndpoint | undefined {
    const ch = this.channels[id];
    if (ch === undefined && (id > channelMax || id > this.lastId)) {
      throw new FrameError(`${what} for channel ${id}, which is not open`, REPLY_CODES.CHANNEL_ERROR);
    }
    return ch;
  }

  /** Every registered endpoint. */
  *[Symbol.iterator](): IterableIterator<ChannelEndpoint> {
    for (const ch of this.channels) if (ch !== undefined) yield ch;
  }
}
