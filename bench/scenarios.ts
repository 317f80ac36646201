// The four scenarios, written once against the Adapter interface. Each measures wall time and this process's CPU
// time over the measured phase only (connect, declare and cleanup are outside it).

import { performance } from 'node:perf_hooks';
import { type CoreScenario, confirmWindow, PREFETCH } from './config.js';
import { waitForCount } from './floor/admin.js';
import type { FloorConnection } from './floor/connection.js';
import type { Adapter, Session } from './libs/types.js';

export interface ScenarioContext {
  url: string;
  queue: string;
  bodySize: number;
  count: number;
  /** Epoch ms after which every loop gives up with an error. */
  deadline: number;
  /** Floor connection for polling queue depth; not the connection under test. */
  admin: FloorConnection;
  confirmWindow: number | undefined;
  /** Wall-time budget of the rpc loop; it stops early (and says so) rather than run into the child's timeout. */
  rpcBudgetMs?: number;
  /** Wall-time budget of a recovery run's publishing; it reports what was confirmed by then. */
  recoveryBudgetMs?: number;
}

/** Generous for 5000 calls at ~1 ms, yet ends a library stuck on ~40 ms Nagle/delayed-ACK round trips in time. */
export const DEFAULT_RPC_BUDGET_MS = 20_000;

export interface Measured {
  messages: number;
  elapsedMs: number;
  cpuUs: number;
  /** The kernel's share of cpuUs: socket reads and writes (on loopback also much of the TCP work). */
  cpuSysUs: number;
  /** Per-call round trip times (rpc only), in microseconds. */
  latenciesUs?: Float64Array;
  /** Scenario-specific figures (the recovery and scaling scenarios), reported as medians over rounds. */
  metrics?: Record<string, number>;
  /** Scenario-specific sequences, e.g. each reconnect delay in order. */
  series?: Record<string, number[]>;
  note?: string;
}

export class Meter {
  private readonly t0 = performance.now();
  private readonly cpu0 = process.cpuUsage();
  stop(messages: number): Measured {
    const elapsedMs = performance.now() - this.t0;
    const cpu = process.cpuUsage(this.cpu0);
    return { messages, elapsedMs, cpuUs: cpu.user + cpu.system, cpuSysUs: cpu.system };
  }
}

export function checkDeadline(ctx: ScenarioContext, what: string): void {
  if (Date.now() > ctx.deadline) throw new Error(`${what}: deadline passed`);
}

async function publish(s: Session, ctx: ScenarioContext): Promise<Measured> {
  await s.declareQueue(ctx.queue);
  const body = Buffer.alloc(ctx.bodySize, 0x61);
  const m = new Meter();
  for (let i = 0; i < ctx.count; i++) {
    const p = s.publish(ctx.queue, body);
    if (p !== undefined) await p;
    if ((i & 1023) === 1023) checkDeadline(ctx, 'publish');
  }
  await s.flush();
  // Without confirms the only proof of delivery is the broker's own count.
  await waitForCount(ctx.admin, ctx.queue, ctx.count, ctx.deadline);
  return m.stop(ctx.count);
}

async function publishConfirm(s: Session, ctx: ScenarioContext): Promise<Measured> {
  await s.declareQueue(ctx.queue);
  await s.confirmSelect();
  const body = Buffer.alloc(ctx.bodySize, 0x61);
  const window = confirmWindow(ctx.bodySize, ctx.confirmWindow);
  let inflight = 0;
  let confirmed = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let allDone: (() => void) | undefined;
  const done = (err: Error | null): void => {
    if (err !== null) failure ??= err;
    inflight--;
    confirmed++;
    if (wake !== undefined && (inflight < window || failure !== undefined)) {
      const w = wake;
      wake = undefined;
      w();
    }
    if (confirmed === ctx.count) allDone?.();
  };
  // Registered before the first publish so a quick final ack cannot be missed.
  const finished = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const m = new Meter();
  for (let i = 0; i < ctx.count; i++) {
    if (inflight >= window) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      checkDeadline(ctx, 'publish-confirm');
    }
    if (failure !== undefined) throw failure;
    inflight++;
    const p = s.publishConfirm(ctx.queue, body, done);
    if (p !== undefined) await p;
  }
  await s.flush();
  if (confirmed < ctx.count) await finished;
  if (failure !== undefined) throw failure;
  return m.stop(ctx.count);
}

async function consumeAck(s: Session, ctx: ScenarioContext): Promise<Measured> {
  // The runner pre-filled ctx.queue with ctx.count messages using the floor.
  let received = 0;
  let bytes = 0;
  let allDone: (() => void) | undefined;
  const finished = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const m = new Meter();
  const consumer = await s.consume(ctx.queue, PREFETCH, (size) => {
    received++;
    bytes += size;
    if (received === ctx.count) allDone?.();
  });
  await finished;
  const result = m.stop(received);
  await consumer.close();
  if (bytes !== ctx.count * ctx.bodySize)
    throw new Error(`consumed ${bytes} body bytes, expected ${ctx.count * ctx.bodySize}`);
  return result;
}

async function rpc(adapter: Adapter, client: Session, ctx: ScenarioContext): Promise<Measured> {
  // The server gets its own connection, as it would in a separate service, but lives in this process.
  const serverSession = await adapter.connect(ctx.url);
  try {
    const server = await serverSession.rpcServer(ctx.queue);
    const rc = await client.rpcClient();
    const body = Buffer.alloc(ctx.bodySize, 0x61);
    // A short warm-up so the first calls' JIT and buffer growth do not land in p99.
    const warmup = Math.min(200, Math.ceil(ctx.count / 10));
    for (let i = 0; i < warmup; i++) await rc.call(ctx.queue, body);
    const lat = new Float64Array(ctx.count);
    const m = new Meter();
    const stopAt = performance.now() + (ctx.rpcBudgetMs ?? DEFAULT_RPC_BUDGET_MS);
    let done = 0;
    while (done < ctx.count) {
      const t = performance.now();
      const size = await rc.call(ctx.queue, body);
      const now = performance.now();
      lat[done++] = (now - t) * 1000;
      if (size !== ctx.bodySize) throw new Error(`rpc reply of ${size} bytes, expected ${ctx.bodySize}`);
      if (now > stopAt) break;
      if ((done & 255) === 0) checkDeadline(ctx, 'rpc');
    }
    const result = m.stop(done);
    await rc.close();
    await server.close();
    const notes = [rc.via, `${warmup} warm-up calls not measured`];
    if (done < ctx.count) notes.push(`time budget reached after ${done} of ${ctx.count} calls`);
    return { ...result, latenciesUs: lat.subarray(0, done), note: notes.join('; ') };
  } finally {
    await serverSession.close().catch(() => undefined);
  }
}

export async function runScenario(adapter: Adapter, scenario: CoreScenario, ctx: ScenarioContext): Promise<Measured> {
  const s = await adapter.connect(ctx.url);
  try {
    switch (scenario) {
      case 'publish':
        return await publish(s, ctx);
      case 'publish-confirm':
        return await publishConfirm(s, ctx);
      case 'consume-ack':
        return await consumeAck(s, ctx);
      case 'rpc':
        return await rpc(adapter, s, ctx);
    }
  } finally {
    await s.deleteQueue(ctx.queue).catch(() => undefined);
    await s.close().catch(() => undefined);
  }
}
