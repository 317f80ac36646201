/**
 * An in-memory socket pair: what one end writes, the other reads. Lets tests and fuzzers run a
 * real connection without the network, fast.
 *
 * @module
 */
import { Duplex } from 'node:stream';

class MemoryEnd extends Duplex {
  peer: MemoryEnd | undefined;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (peer === undefined || peer.destroyed) {
      callback(new Error('the other end is closed'));
      return;
    }
    peer.push(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.peer?.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    this.peer = undefined;
    if (peer !== undefined && !peer.destroyed) {
      peer.peer = undefined;
      peer.push(null);
      peer.destroy();
    }
    callback(error);
  }

  /** Socket methods the transport calls; no-ops in memory. */
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

/** Two connected in-memory duplex streams. */
export function memorySocketPair(): [Duplex, Duplex] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
