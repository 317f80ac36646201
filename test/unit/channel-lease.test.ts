/**
 * The channel lease without a broker: it opens a channel per attached session, hands it to its
 * owner's setup, reports failures only while the attempt is current and the connection up, closes
 * what a failed or superseded setup leaves open, and retries on a timer that a detach cancels.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Channel } from '../../src/channel/channel.js';
import type { Connection } from '../../src/connect.js';
import { ChannelLease, type LeaseOwner } from '../../src/client/channel-lease.js';
import type { Session } from '../../src/client/host.js';
import type { AMQPError } from '../../src/errors.js';

interface FakeChannel {
  id: number;
  isOpen: boolean;
  closed: number;
  close(): Promise<void>;
}

function fakeSession(generation = 1): Session & { alive: boolean; channels: FakeChannel[]; conn: { isOpen: boolean } } {
  const channels: FakeChannel[] = [];
  const conn = {
    isOpen: true,
    async openChannel(): Promise<Channel> {
      if (!conn.isOpen) throw new Error('connection closed');
      const ch: FakeChannel = {
        id: channels.length + 1,
        isOpen: true,
        closed: 0,
        async close() {
          ch.isOpen = false;
          ch.closed++;
        },
      };
      channels.push(ch);
      return ch as unknown as Channel;
    },
  };
  return { connection: conn as unknown as Connection, generation, alive: true, channels, conn };
}

interface Probe {
  owner: LeaseOwner;
  set: { ready: { channel: FakeChannel; current: boolean }[]; failed: AMQPError[] };
  wanted: boolean;
  fail: boolean;
  /** Resolves the setup in progress (when `hold` is set). */
  release?: () => void;
  hold: boolean;
}

function probe(): Probe {
  const p: Probe = {
    set: { ready: [], failed: [] },
    wanted: true,
    fail: false,
    hold: false,
    owner: {
      wanted: () => p.wanted,
      setup: async (channel, _session, current) => {
        if (p.hold) await new Promise<void>((resolve) => (p.release = resolve));
        if (p.fail) throw new Error('setup refused');
        p.set.ready.push({ channel: channel as unknown as FakeChannel, current: current() });
      },
      openFailed: (_session, error) => p.set.failed.push(error),
    },
  };
  return p;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('attach opens a channel and hands it to setup as current', async () => {
  const p = probe();
  const lease = new ChannelLease(p.owner);
  const session = fakeSession();
  lease.failures = 3;
  lease.attach(session);
  assert.equal(lease.failures, 0, 'a new connection forgets earlier failures');
  assert.equal(lease.session, session);
  assert.equal(lease.liveSession, session);
  await tick();
  assert.equal(p.set.ready.length, 1);
  assert.equal(p.set.ready[0]!.current, true);
  session.conn.isOpen = false;
  assert.equal(lease.liveSession, undefined, 'a connection on its way down is not live');
});

test('a failed setup closes the channel and reports, with the error as an AMQPError', async () => {
  const p = probe();
  p.fail = true;
  const lease = new ChannelLease(p.owner);
  const session = fakeSession();
  lease.attach(session);
  await tick();
  assert.equal(session.channels[0]!.closed, 1);
  assert.equal(p.set.failed.length, 1);
  assert.match(p.set.failed[0]!.message, /setup refused/);
});

test('no report when the connection died, the owner stopped, or the open was superseded', async () => {
  for (const how of ['connection', 'owner', 'superseded'] as const) {
    const p = probe();
    p.fail = true;
    p.hold = true;
    const lease = new ChannelLease(p.owner);
    const session = fakeSession();
    lease.attach(session);
    await tick();
    if (how === 'connection') session.conn.isOpen = false;
    else if (how === 'owner') p.wanted = false;
    else lease.detach();
    p.release!();
    await tick();
    assert.deepEqual(p.set.failed, [], how);
    assert.equal(session.channels[0]!.closed, 1, `${how}: the channel is closed`);
  }
});

test('a superseded setup sees current() turn false', async () => {
  const p = probe();
  p.hold = true;
  const lease = new ChannelLease(p.owner);
  const session = fakeSession();
  lease.attach(session);
  await tick();
  lease.supersede();
  assert.equal(lease.session, session, 'supersede keeps the session');
  p.release!();
  await tick();
  assert.equal(p.set.ready[0]!.current, false);
});

test('openIn retries after the delay; detach, a dead session or a stopped owner cancel it', async () => {
  const p = probe();
  const lease = new ChannelLease(p.owner);
  const session = fakeSession();
  lease.attach(session);
  await tick();
  lease.openIn(session, 5);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(session.channels.length, 2, 'retried');

  lease.openIn(session, 5);
  lease.detach();
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(session.channels.length, 2, 'detach cancelled the retry');

  lease.attach(session);
  await tick();
  assert.equal(session.channels.length, 3);
  lease.openIn(session, 5);
  session.alive = false;
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(session.channels.length, 3, 'a dead session is not retried');

  const other = fakeSession(2);
  lease.attach(other);
  await tick();
  lease.openIn(other, 5);
  p.wanted = false;
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(other.channels.length, 1, 'a stopped owner is not retried');

  p.wanted = true;
  lease.openIn(other, 1000);
  lease.openNow(other);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(other.channels.length, 2, 'openNow replaces the pending retry');
  lease.detach();
});
