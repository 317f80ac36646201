// Markdown for issue 12's targets: the ratios of the core scenarios (warren ÷ floor, warren CPU ÷ best peer's),
// and one table per recovery and scaling scenario with the ratios each target is stated in.

import type { Scenario } from './config.js';
import type { LibName } from './libs/types.js';
import { fmtInt, fmtNum, type SummaryRow } from './report.js';

/** The other Node clients warren is compared with (warren-amqplib is warren, the floor is the limit). */
const PEERS: readonly LibName[] = ['amqplib', 'amqp-client', 'rabbitmq-client'];

type Num = number | null | undefined;

function ratio(a: Num, b: Num): string {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  const q = a / b;
  return `${q !== 0 && q < 0.1 ? q.toPrecision(2) : q.toFixed(2)}×`;
}

function row(rows: readonly SummaryRow[], lib: LibName, scenario: Scenario): SummaryRow | undefined {
  return rows.find((r) => r.lib === lib && r.scenario === scenario && r.size === '16B');
}

function metric(r: SummaryRow | undefined, key: string): Num {
  return r?.metrics?.[key];
}

/** The peer with the best (lowest with `lower`, else highest) value of `pick`. */
function bestPeer(
  rows: readonly SummaryRow[],
  scenario: Scenario,
  pick: (r: SummaryRow) => Num,
  lower: boolean,
): SummaryRow | undefined {
  let best: SummaryRow | undefined;
  for (const lib of PEERS) {
    const r = row(rows, lib, scenario);
    const v = r === undefined ? null : pick(r);
    if (r === undefined || v == null || !Number.isFinite(v)) continue;
    const b = best === undefined ? null : pick(best);
    if (b == null || (lower ? v < b : v > b)) best = r;
  }
  return best;
}

function failed(r: SummaryRow): string {
  return `failed${r.errors[0] === undefined ? '' : ` (${r.errors[0]})`}`;
}

function rate(r: SummaryRow | undefined): string {
  if (r === undefined) return '–';
  if (r.msgsPerSec === null) return failed(r);
  return `${fmtInt(r.msgsPerSec)} (${fmtNum(r.cpuUsPerMsg, 2)})`;
}

function targets(rows: readonly SummaryRow[]): string[] {
  const out: string[] = [];
  const scenarios: Scenario[] = ['publish', 'publish-confirm', 'consume-ack'];
  if (scenarios.some((s) => row(rows, 'warren', s) !== undefined)) {
    out.push(
      '### Targets at 16 B: msg/s (client CPU µs/msg)',
      '',
      '| scenario | floor | warren | best peer | warren ÷ floor | warren CPU ÷ best peer’s | warren CPU ÷ floor’s |',
      '|---|--:|--:|--:|--:|--:|--:|',
    );
    for (const s of scenarios) {
      const w = row(rows, 'warren', s);
      if (w === undefined) continue;
      const f = row(rows, 'floor', s);
      const p = bestPeer(rows, s, (r) => r.msgsPerSec, false);
      out.push(
        `| ${s} | ${rate(f)} | ${rate(w)} | ${p === undefined ? '–' : `${p.lib} ${rate(p)}`} | ${ratio(w.msgsPerSec, f?.msgsPerSec)} | ${ratio(w.cpuUsPerMsg, p?.cpuUsPerMsg)} | ${ratio(w.cpuUsPerMsg, f?.cpuUsPerMsg)} |`,
      );
    }
    out.push('');
  }
  const w = row(rows, 'warren', 'rpc');
  if (w !== undefined) {
    const f = row(rows, 'floor', 'rpc');
    const p = bestPeer(rows, 'rpc', (r) => r.p50Us, true);
    const lat = (r: SummaryRow | undefined): string =>
      r === undefined ? '–' : r.p50Us === null ? failed(r) : `${fmtInt(r.p50Us)} / ${fmtNum(r.p99Us, 0)}`;
    out.push(
      '### RPC at 16 B over direct reply-to, one call in flight: p50 / p99 µs',
      '',
      '| floor | warren | best peer | warren ÷ floor p50 / p99 | warren ÷ best peer p50 / p99 |',
      '|--:|--:|--:|--:|--:|',
      `| ${lat(f)} | ${lat(w)} | ${p === undefined ? '–' : `${p.lib} ${lat(p)}`} | ${ratio(w.p50Us, f?.p50Us)} / ${ratio(w.p99Us, f?.p99Us)} | ${ratio(w.p50Us, p?.p50Us)} / ${ratio(w.p99Us, p?.p99Us)} |`,
      '',
    );
  }
  return out;
}

function present(rows: readonly SummaryRow[], scenario: Scenario): SummaryRow[] {
  return rows.filter((r) => r.scenario === scenario && r.size === '16B');
}

function ms(v: Num, digits = 0): string {
  return fmtNum(v, digits);
}

function recoveryTables(rows: readonly SummaryRow[]): string[] {
  const out: string[] = [];
  const storm = present(rows, 'recovery');
  if (storm.length > 0) {
    out.push(
      '### Recovery: a cut every 300 ms, confirmed persistent publishes, 100 in flight',
      '',
      '| library | confirmed / asked | total s | cuts | connections | duplicates | lost | cut → first confirm ms, median (max) |',
      '|---|--:|--:|--:|--:|--:|--:|--:|',
    );
    for (const r of storm) {
      if (r.metrics === undefined) {
        out.push(`| ${r.lib} | ${failed(r)} |  |  |  |  |  |  |`);
        continue;
      }
      const total = metric(r, 'totalMs');
      out.push(
        `| ${r.lib} | ${fmtInt(metric(r, 'confirmed') ?? 0)} / ${fmtInt(r.count)} | ${total == null ? '–' : (total / 1000).toFixed(total < 10_000 ? 2 : 1)} | ${ms(metric(r, 'cuts'))} | ${ms(metric(r, 'connections'))} | ${ms(metric(r, 'duplicates'))} | ${ms(metric(r, 'lost'))} | ${ms(metric(r, 'cutToConfirmMedianMs'))} (${ms(metric(r, 'cutToConfirmMaxMs'))}) |`,
      );
    }
    const w = storm.find((r) => r.lib === 'warren');
    const q = storm.find((r) => r.lib === 'rabbitmq-client');
    if (w?.metrics !== undefined && q?.metrics !== undefined) {
      const done = (r: SummaryRow): boolean => (metric(r, 'confirmed') ?? 0) >= r.count;
      const time = done(w) && done(q) ? ratio(metric(w, 'totalMs'), metric(q, 'totalMs')) : 'n/a (budget reached)';
      // Duplicates per confirmed message, so a run that got further is not penalised for it.
      const dupRate = (r: SummaryRow): Num => {
        const d = metric(r, 'duplicates');
        const c = metric(r, 'confirmed');
        return d == null || c == null || c === 0 ? null : d / c;
      };
      const dq = dupRate(q);
      const dups =
        dq === 0 ? (dupRate(w) === 0 ? '1.00× (none either)' : '∞ (rabbitmq-client: none)') : ratio(dupRate(w), dq);
      out.push(
        '',
        `warren ÷ rabbitmq-client: time ${time} (target ≤ 0.8×), duplicates per message ${dups} (target ≤ 0.2×); warren's median cut → first confirm ${ms(metric(w, 'cutToConfirmMedianMs'))} ms (target ≤ 100 ms).`,
      );
    }
    const notes = storm.filter((r) => r.note !== undefined).map((r) => `- ${r.lib}: ${r.note}`);
    out.push('', ...notes, '');
  }
  const inflight = present(rows, 'recovery-inflight');
  if (inflight.length > 0) {
    out.push(
      '### Recovery: a cut every second with 100 publishes in flight — each reconnect delay (cut → new connection)',
      '',
      '| library | cuts | reconnect delays, ms, in order | median | max | cut → first confirm ms, median | duplicates | lost |',
      '|---|--:|---|--:|--:|--:|--:|--:|',
    );
    for (const r of inflight) {
      if (r.metrics === undefined) {
        out.push(`| ${r.lib} | ${failed(r)} |  |  |  |  |  |  |`);
        continue;
      }
      const each = (r.series?.reconnectMs ?? []).map((v) => fmtInt(v)).join(', ');
      out.push(
        `| ${r.lib} | ${ms(metric(r, 'cuts'))} | ${each} | ${ms(metric(r, 'reconnectMedianMs'))} | ${ms(metric(r, 'reconnectMaxMs'))} | ${ms(metric(r, 'cutToConfirmMedianMs'))} | ${ms(metric(r, 'duplicates'))} | ${ms(metric(r, 'lost'))} |`,
      );
    }
    const w = inflight.find((r) => r.lib === 'warren');
    const q = inflight.find((r) => r.lib === 'rabbitmq-client');
    if (w?.metrics !== undefined && q?.metrics !== undefined) {
      out.push(
        '',
        `warren ÷ rabbitmq-client: median reconnect ${ratio(metric(w, 'reconnectMedianMs'), metric(q, 'reconnectMedianMs'))}, max ${ratio(metric(w, 'reconnectMaxMs'), metric(q, 'reconnectMaxMs'))}.`,
      );
    }
    const notes = inflight.filter((r) => r.note !== undefined).map((r) => `- ${r.lib}: ${r.note}`);
    out.push('', ...notes, '');
  }
  return out;
}

function scaleTables(rows: readonly SummaryRow[]): string[] {
  const out: string[] = [];
  const consumerScenarios: Scenario[] = ['consumers-1', 'consumers-100', 'consumers-1000'];
  const consumers = consumerScenarios.flatMap((s) => present(rows, s));
  if (consumers.length > 0) {
    out.push(
      '### Consumers on one channel: CPU per message and memory per consumer',
      '',
      '| consumers | library | CPU µs/msg | heap KiB / consumer | RSS KiB / consumer | attach µs / consumer | warren CPU ÷ this |',
      '|--:|---|--:|--:|--:|--:|--:|',
    );
    for (const s of consumerScenarios) {
      const w = row(rows, 'warren', s);
      for (const r of present(rows, s)) {
        if (r.metrics === undefined) {
          out.push(`| ${s.slice(10)} | ${r.lib} | ${failed(r)} |  |  |  |  |`);
          continue;
        }
        out.push(
          `| ${fmtInt(metric(r, 'consumers') ?? 0)} | ${r.lib} | ${fmtNum(r.cpuUsPerMsg, 2)} | ${fmtNum(metric(r, 'heapPerConsumerKiB'), 1)} | ${fmtNum(metric(r, 'rssPerConsumerKiB'), 1)} | ${ms(metric(r, 'attachUsPerConsumer'))} | ${r.lib === 'warren' ? '' : ratio(w?.cpuUsPerMsg, r.cpuUsPerMsg)} |`,
        );
      }
    }
    const w1 = row(rows, 'warren', 'consumers-1');
    const w1000 = row(rows, 'warren', 'consumers-1000');
    const best = bestPeer(rows, 'consumers-1000', (r) => r.cpuUsPerMsg, true);
    const bestMem = bestPeer(rows, 'consumers-1000', (r) => metric(r, 'heapPerConsumerKiB'), true);
    out.push(
      '',
      `warren CPU/msg at 1,000 consumers ÷ at 1: ${ratio(w1000?.cpuUsPerMsg, w1?.cpuUsPerMsg)} (flat is 1.00×); ÷ best peer's at 1,000 (${best?.lib ?? '–'}): ${ratio(w1000?.cpuUsPerMsg, best?.cpuUsPerMsg)}; heap per consumer ÷ lowest peer's (${bestMem?.lib ?? '–'}): ${ratio(metric(w1000, 'heapPerConsumerKiB'), metric(bestMem, 'heapPerConsumerKiB'))}.`,
      '',
    );
  }
  const channels = present(rows, 'channels');
  if (channels.length > 0) {
    out.push(
      '### Channels on one connection, opened one after another',
      '',
      '| library | channels | open µs, median | first 100 / last 100 | CPU µs / open | heap KiB / channel | RSS KiB / channel |',
      '|---|--:|--:|--:|--:|--:|--:|',
    );
    for (const r of channels) {
      if (r.metrics === undefined) {
        out.push(`| ${r.lib} | ${failed(r)} |  |  |  |  |  |`);
        continue;
      }
      out.push(
        `| ${r.lib} | ${fmtInt(metric(r, 'channels') ?? 0)} | ${ms(metric(r, 'openUsMedian'))} | ${ms(metric(r, 'openUsFirst100'))} / ${ms(metric(r, 'openUsLast100'))} | ${fmtNum(r.cpuUsPerMsg, 0)} | ${fmtNum(metric(r, 'heapPerChannelKiB'), 2)} | ${fmtNum(metric(r, 'rssPerChannelKiB'), 2)} |`,
      );
    }
    const w = row(rows, 'warren', 'channels');
    const best = bestPeer(rows, 'channels', (r) => metric(r, 'heapPerChannelKiB'), true);
    out.push(
      '',
      `warren heap per channel ÷ lowest peer's (${best?.lib ?? '–'}): ${ratio(metric(w, 'heapPerChannelKiB'), metric(best, 'heapPerChannelKiB'))}; warren's last 100 opens ÷ first 100: ${ratio(metric(w, 'openUsLast100'), metric(w, 'openUsFirst100'))}.`,
      '',
    );
  }
  const conns = present(rows, 'connections');
  if (conns.length > 0) {
    out.push(
      '### Connections from one process, opened at once (each with one channel)',
      '',
      '| library | connections | total ms | CPU µs / connection | heap KiB / connection | RSS KiB / connection |',
      '|---|--:|--:|--:|--:|--:|',
    );
    for (const r of conns) {
      if (r.metrics === undefined) {
        out.push(`| ${r.lib} | ${failed(r)} |  |  |  |  |`);
        continue;
      }
      out.push(
        `| ${r.lib} | ${fmtInt(metric(r, 'connections') ?? 0)} | ${ms(metric(r, 'totalMs'))} | ${fmtNum(r.cpuUsPerMsg, 0)} | ${fmtNum(metric(r, 'heapPerConnectionKiB'), 1)} | ${fmtNum(metric(r, 'rssPerConnectionKiB'), 1)} |`,
      );
    }
    const w = row(rows, 'warren', 'connections');
    const f = row(rows, 'floor', 'connections');
    const best = bestPeer(rows, 'connections', (r) => metric(r, 'heapPerConnectionKiB'), true);
    out.push(
      '',
      `warren ÷ floor: time ${ratio(metric(w, 'totalMs'), metric(f, 'totalMs'))}, heap ${ratio(metric(w, 'heapPerConnectionKiB'), metric(f, 'heapPerConnectionKiB'))}; heap ÷ lowest peer's (${best?.lib ?? '–'}): ${ratio(metric(w, 'heapPerConnectionKiB'), metric(best, 'heapPerConnectionKiB'))}.`,
      '',
    );
  }
  const fan = present(rows, 'fanout');
  if (fan.length > 0) {
    out.push(
      '### Fan-out: one publish to a fanout exchange with 1,000 bound queues, each consumed by the library',
      '',
      '| library | publishes | all 1,000 delivered, ms median (max) | CPU µs / delivered copy |',
      '|---|--:|--:|--:|',
    );
    for (const r of fan) {
      if (r.metrics === undefined) {
        out.push(`| ${r.lib} | ${failed(r)} |  |  |`);
        continue;
      }
      out.push(
        `| ${r.lib} | ${fmtInt(metric(r, 'publishes') ?? 0)} | ${fmtNum(metric(r, 'allDeliveredMedianMs'), 1)} (${fmtNum(metric(r, 'allDeliveredMaxMs'), 1)}) | ${fmtNum(r.cpuUsPerMsg, 2)} |`,
      );
    }
    const w = row(rows, 'warren', 'fanout');
    const f = row(rows, 'floor', 'fanout');
    const best = bestPeer(rows, 'fanout', (r) => r.cpuUsPerMsg, true);
    out.push(
      '',
      `warren ÷ floor: time ${ratio(metric(w, 'allDeliveredMedianMs'), metric(f, 'allDeliveredMedianMs'))}; warren CPU ÷ best peer's (${best?.lib ?? '–'}): ${ratio(w?.cpuUsPerMsg, best?.cpuUsPerMsg)}.`,
      '',
    );
  }
  return out;
}

/** The targets and the extended scenarios' tables, as markdown; empty when none of them ran. */
export function extendedMarkdown(rows: readonly SummaryRow[]): string {
  return [...targets(rows), ...recoveryTables(rows), ...scaleTables(rows)].join('\n').trim();
}
