/**
 * Counters read off a connection's frame trace (`debug: audit.line`), to check from the wire what a
 * client holds: deliveries received and not yet handled, publishes written and not yet confirmed.
 *
 *   const wire = new WireAudit();
 *   const client = createClient({ urls, debug: wire.line });
 *   ...
 *   assert.ok(wire.maxUnconfirmed <= 100);
 */
export class WireAudit {
  /** basic.deliver frames received, over all connections. */
  deliveries = 0;
  /** basic.publish frames written, over all connections. */
  publishes = 0;
  /** Publishes written and not yet acked or nacked, on the current connection. */
  unconfirmed = 0;
  /** The most `unconfirmed` ever was. */
  maxUnconfirmed = 0;
  /** Called with every delivery as it arrives, before the client dispatches it. */
  onDelivery: (() => void) | undefined;
  private published = new Map<number, number>();
  private settled = new Map<number, Set<number>>();
  private settledUpTo = new Map<number, number>();

  readonly line = (line: string): void => {
    if (line.startsWith('warren < ')) {
      if (line.includes(' connection.start ')) this.reset();
      const deliver = /^warren < ch=\d+ basic\.deliver /.exec(line);
      if (deliver !== null) {
        this.deliveries++;
        this.onDelivery?.();
        return;
      }
      const ack = /^warren < ch=(\d+) basic\.(?:ack|nack) (.*)$/.exec(line);
      if (ack !== null) this.confirm(Number(ack[1]), JSON.parse(ack[2]!) as { deliveryTag: number; multiple: boolean });
      return;
    }
    const publish = /^warren > ch=(\d+) basic\.publish /.exec(line);
    if (publish !== null) {
      const ch = Number(publish[1]);
      this.published.set(ch, (this.published.get(ch) ?? 0) + 1);
      this.publishes++;
      this.unconfirmed++;
      this.maxUnconfirmed = Math.max(this.maxUnconfirmed, this.unconfirmed);
      return;
    }
    // A channel opened again starts its delivery tags from 1.
    const open = /^warren > ch=(\d+) channel\.open /.exec(line);
    if (open !== null) this.forget(Number(open[1]));
  };

  private confirm(ch: number, args: { deliveryTag: number; multiple: boolean }): void {
    const upTo = this.settledUpTo.get(ch) ?? 0;
    const singles = this.settled.get(ch) ?? new Set<number>();
    this.settled.set(ch, singles);
    let newly = 0;
    if (args.multiple) {
      for (let tag = upTo + 1; tag <= args.deliveryTag; tag++) if (!singles.delete(tag)) newly++;
      this.settledUpTo.set(ch, Math.max(upTo, args.deliveryTag));
    } else if (args.deliveryTag > upTo && !singles.has(args.deliveryTag)) {
      singles.add(args.deliveryTag);
      newly = 1;
    }
    this.unconfirmed -= newly;
  }

  private forget(ch: number): void {
    const left = (this.published.get(ch) ?? 0) - this.settledCount(ch);
    this.unconfirmed -= Math.max(0, left);
    this.published.delete(ch);
    this.settled.delete(ch);
    this.settledUpTo.delete(ch);
  }

  private settledCount(ch: number): number {
    return (this.settledUpTo.get(ch) ?? 0) + (this.settled.get(ch)?.size ?? 0);
  }

  private reset(): void {
    this.published.clear();
    this.settled.clear();
    this.settledUpTo.clear();
    this.unconfirmed = 0;
  }
}
