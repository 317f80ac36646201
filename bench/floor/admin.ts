// Queue chores done with the floor so they cost the same for every library: pre-filling the consume queue,
// polling a queue's depth, deleting leftovers. Always on their own connection, never the measured one.

import { performance } from 'node:perf_hooks';
import floor from '../libs/floor.js';
import type { FloorConnection } from './connection.js';

const POLL_MS = 3;
const MAX_POLL_MS = 100;
const STALLED_POLL_MS = 20;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls with passive queue.declare until the queue holds `count` ready messages or `deadline` (epoch ms) passes. */
export async function waitForCount(
  admin: FloorConnection,
  queue: string,
  count: number,
  deadline: number,
): Promise<void> {
  let prevCount = -1;
  let prevAt = 0;
  for (;;) {
    const { messageCount } = await admin.queueDeclare(queue, { passive: true });
    if (messageCount >= count) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${count} messages in ${queue} (have ${messageCount})`);
    }
    // Polls run in the measured process, so they are spaced by half the estimated time still needed (at least
    // POLL_MS): a few dozen polls per run instead of one every POLL_MS, and the end is still seen within a few ms.
    const now = performance.now();
    let wait = prevCount < 0 ? POLL_MS : STALLED_POLL_MS;
    if (prevCount >= 0 && messageCount > prevCount) {
      const perMs = (messageCount - prevCount) / (now - prevAt);
      wait = (count - messageCount) / perMs / 2;
    }
    prevCount = messageCount;
    prevAt = now;
    await sleep(Math.min(MAX_POLL_MS, Math.max(POLL_MS, wait)));
  }
}

/** Declares `queue` and fills it with `count` bodies of `size` bytes, returning once the broker holds them all. */
export async function prefill(
  url: string,
  admin: FloorConnection,
  queue: string,
  size: number,
  count: number,
  deadline: number,
): Promise<void> {
  const s = await floor.connect(url);
  try {
    await s.declareQueue(queue);
    const body = Buffer.alloc(size, 0x61);
    for (let i = 0; i < count; i++) {
      const p = s.publish(queue, body);
      if (p !== undefined) await p;
      if ((i & 1023) === 0 && Date.now() > deadline) throw new Error(`prefill of ${queue} timed out`);
    }
    await s.flush();
    await waitForCount(admin, queue, count, deadline);
  } finally {
    await s.close();
  }
}
