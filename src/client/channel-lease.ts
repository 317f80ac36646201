/**
 * One channel per connection for a part of the robust client (a publisher, a subscription, the RPC
 * caller): opened when a connection is attached, opened again after the broker closes it, given up
 * when the connection goes. The part says what to do with a new channel (`setup`) and when to try
 * again; the lease keeps the bookkeeping every part needs the same way: which session it works for,
 * a sequence number that makes an open superseded by a later one (or by a detach) harmless, the
 * retry timer, and the count of failures in a row that the backoff grows with.
 *
 * @module
 */
import type { Channel } from '../channel/channel.js';
import type { AMQPError } from '../errors.js';
import type { Session } from './host.js';
import { asAMQPError } from './topology.js';

/** What the part owning a lease does with its channels. */
export interface LeaseOwner {
  /** False once the part has stopped: nothing is opened or retried for it. */
  wanted(): boolean;
  /**
   * Makes a freshly opened channel ready (confirm.select, basic.consume…) and takes it. Throws when
   * it cannot be used: the lease closes the channel. `current()` turns false once a later open or a
   * detach has superseded this one.
   */
  setup(channel: Channel, session: Session, current: () => boolean): Promise<void>;
  /** An open failed on a connection that is still up, and is still current: retry (`openIn`) or report. */
  openFailed(session: Session, error: AMQPError): void;
}

/** @internal */
export class ChannelLease {
  private readonly owner: LeaseOwner;
  private current: Session | undefined;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Failures in a row; what each part counts as one (and when it resets) is its own rule. */
  failures = 0;

  constructor(owner: LeaseOwner) {
    this.owner = owner;
  }

  /** The session attached now; `undefined` between a detach and the next attach. */
  get session(): Session | undefined {
    return this.current;
  }

  /** The attached session while its connection is up: a channel closed on it was closed by the broker. */
  get liveSession(): Session | undefined {
    const session = this.current;
    return session?.alive && session.connection.isOpen ? session : undefined;
  }

  /** A new connection: forget earlier failures and open a channel on it. */
  attach(session: Session): void {
    this.current = session;
    this.failures = 0;
    void this.open(session);
  }

  /** The connection died (or the part stops): opens in progress are superseded, no retry is left. */
  detach(): void {
    this.current = undefined;
    this.supersede();
  }

  /** Makes opens in progress stale and cancels a pending retry, keeping the session. */
  supersede(): void {
    this.seq++;
    this.cancelRetry();
  }

  cancelRetry(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Opens a channel on `session` now (a pending retry is dropped). */
  openNow(session: Session): void {
    this.cancelRetry();
    void this.open(session);
  }

  /** Opens a channel on `session` after `delay` ms, unless detached or stopped meanwhile. */
  openIn(session: Session, delay: number): void {
    this.cancelRetry();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.owner.wanted() && session.alive && this.current === session) void this.open(session);
    }, delay);
  }

  private async open(session: Session): Promise<void> {
    const seq = ++this.seq;
    const current = (): boolean => seq === this.seq;
    let channel: Channel | undefined;
    try {
      channel = await session.connection.openChannel();
      await this.owner.setup(channel, session, current);
    } catch (err) {
      if (channel?.isOpen) void channel.close();
      // A dead connection: the client attaches the next one. A superseded open: the next one is under way.
      if (current() && this.owner.wanted() && session.alive && session.connection.isOpen) {
        this.owner.openFailed(session, asAMQPError(err));
      }
    }
  }
}
