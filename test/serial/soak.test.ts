/**
 * The soak in CI: 60 seconds (WARREN_SOAK_SECONDS to change) of mixed publish/consume/RPC through a
 * proxy that cuts every connection every 5 seconds; no unhandled rejection, nothing lost, every call
 * settled, and heap, RSS, listeners and handles flat between the first and the last 15 seconds. The
 * 10-minute run is `npm run soak` (test/soak/soak.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak } from '../soak/soak.js';

const seconds = Number(process.env.WARREN_SOAK_SECONDS ?? 60);

test(`soak: ${seconds} s of publish/consume/RPC with a connection cut every 5 s`, {
  timeout: (seconds + 180) * 1000,
}, async (t) => {
  const report = await runSoak({
    durationMs: seconds * 1000,
    cutEveryMs: 5000,
    windowMs: Math.min(60_000, (seconds * 1000) / 4),
    log: (line) => t.diagnostic(line),
  });
  t.diagnostic(
    `published ${report.published}, consumed ${report.consumed} (${report.deliveries} deliveries), ` +
      `rpc ${report.rpcOk}/${report.rpcCalls}, cuts ${report.cuts}, connects ${report.reconnects}`,
  );
  t.diagnostic(`first window ${JSON.stringify(report.first)}; last window ${JSON.stringify(report.last)}`);
  assert.deepEqual(report.problems, []);
  assert.ok(report.cuts >= Math.floor(seconds / 5) - 1, `only ${report.cuts} cuts`);
  assert.ok(report.consumed > 0 && report.rpcOk > 0);
});
