// Backpressure for libraries whose publish returns a promise that settles once the frames are written (amqp-client,
// rabbitmq-client, warren without confirms). Not awaiting those promises lets the library buffer without bound;
// awaiting each one serialises publishes behind a socket write. A window of outstanding writes, refilled once it
// has drained to half, is how a careful user of such a library keeps memory bounded without losing throughput.

/** Outstanding "written" promises allowed: 1000 messages or 16 MiB, whichever is fewer. */
export const WRITE_WINDOW_MESSAGES = 1000;
export const WRITE_WINDOW_BYTES = 16 * 1024 * 1024;

export class WriteWindow {
  private inflight = 0;
  private limit = 0;
  private waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private drained: Array<() => void> = [];
  // Bound once: a fresh closure per publish would be measured as the library's cost.
  private readonly onSettled = (): void => {
    this.inflight--;
    const w = this.waiter;
    if (w !== undefined && this.inflight <= this.limit >> 1) {
      this.waiter = undefined;
      w.resolve();
    }
    if (this.inflight === 0 && this.drained.length > 0) {
      const ds = this.drained;
      this.drained = [];
      for (const d of ds) d();
    }
  };
  private readonly onError = (err: unknown): void => {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
    this.onSettled();
  };

  track(p: Promise<unknown>, bodySize: number): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.limit === 0) {
      this.limit = Math.max(2, Math.min(WRITE_WINDOW_MESSAGES, Math.floor(WRITE_WINDOW_BYTES / Math.max(1, bodySize))));
    }
    this.inflight++;
    p.then(this.onSettled, this.onError);
    if (this.inflight < this.limit) return undefined;
    return new Promise<void>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Resolves when nothing is outstanding; rejects with the first write error seen. */
  async drain(): Promise<void> {
    if (this.inflight > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    if (this.failure !== undefined) throw this.failure;
  }
}
