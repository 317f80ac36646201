/**
 * A latency histogram with about 1 % precision and fixed memory, for `warren perf`: recording is
 * O(1) and allocates nothing, so measuring does not disturb what is measured.
 *
 * @module
 */

/** Ratio between neighbouring bucket bounds: values are kept to about 1 %. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
/** Values are recorded in microseconds; buckets reach past 100 s. */
const BUCKETS = Math.ceil(Math.log(1e8) / LOG_GROWTH) + 2;

/** Percentiles and extremes of recorded latencies, in milliseconds. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p75: number;
  p95: number;
  p99: number;
  max: number;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  private sum = 0;
  private minUs = Number.POSITIVE_INFINITY;
  private maxUs = 0;

  /** Records one value given in milliseconds. */
  record(ms: number): void {
    const us = ms * 1000;
    if (!(us >= 0)) return; // NaN or a negative clock difference: not a latency
    const i = us < 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) / LOG_GROWTH) + 1);
    this.counts[i]!++;
    this.count++;
    this.sum += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** Adds every value of `other`. */
  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sum += other.sum;
    this.minUs = Math.min(this.minUs, other.minUs);
    this.maxUs = Math.max(this.maxUs, other.maxUs);
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.minUs = Number.POSITIVE_INFINITY;
    this.maxUs = 0;
  }

  /** The value (ms) below which fraction `q` (0–1) of the recorded values lie. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        // The middle of the bucket, clamped to what was really seen at either end.
        const mid = i === 0 ? 0.5 : GROWTH ** (i - 1) * ((1 + GROWTH) / 2);
        return Math.min(this.maxUs, Math.max(this.minUs, mid)) / 1000;
      }
    }
    return this.maxUs / 1000;
  }

  summary(): LatencySummary {
    const r = (v: number) => Math.round(v * 1000) / 1000;
    return {
      count: this.count,
      min: this.count === 0 ? 0 : r(this.minUs / 1000),
      mean: this.count === 0 ? 0 : r(this.sum / this.count / 1000),
      p50: r(this.quantile(0.5)),
      p75: r(this.quantile(0.75)),
      p95: r(this.quantile(0.95)),
      p99: r(this.quantile(0.99)),
      max: r(this.maxUs / 1000),
    };
  }
}
