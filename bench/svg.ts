// A dependency-free SVG of the summary: one panel per metric, one group of bars per scenario × size, one bar per
// library. Values differ by orders of magnitude between 16 B and 1 MiB, so each group is scaled to its own
// maximum (= 100 %) and every bar carries its absolute value.

import { type Scenario, SIZES, type SizeName } from './config.js';
import { LIB_NAMES, type LibName } from './libs/types.js';
import { fmtShort, type SummaryRow } from './report.js';

const COLORS: Record<LibName, string> = {
  warren: '#e4572e',
  'warren-amqplib': '#f39c12',
  amqplib: '#2e86de',
  'amqp-client': '#17a589',
  'rabbitmq-client': '#8e44ad',
  floor: '#7f8c8d',
};

const FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'";

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface Metric {
  title: string;
  note: string;
  /** Part of each bar drawn pale: the process's RSS before the library did anything. */
  base?: (r: SummaryRow) => number | null;
  pick: (r: SummaryRow) => number | null;
  unit: string;
  format: (v: number) => string;
}

const METRICS: Metric[] = [
  {
    title: 'Throughput (msg/s; rpc: sequential calls/s) — higher is better',
    note: 'bar height: % of the largest value in its group; label: absolute value',
    pick: (r) => r.msgsPerSec,
    unit: 'msg/s',
    format: fmtShort,
  },
  {
    title: 'Client CPU per message (µs) — lower is better',
    note: 'bar height: % of the largest value in its group; label: absolute value (rpc: client and server both in the process)',
    pick: (r) => r.cpuUsPerMsg,
    unit: 'µs',
    format: (v) => (v >= 100 ? v.toFixed(0) : v.toPrecision(3)),
  },
  {
    title: 'Peak RSS of the client process (MiB) — lower is better',
    note: 'bar height: % of the largest value in its group; pale part: RSS at start (Node + tsx, before the library loads)',
    base: (r) => r.startRssMiB,
    pick: (r) => r.peakRssMiB,
    unit: 'MiB',
    format: (v) => v.toFixed(0),
  },
];

export function renderChart(rows: readonly SummaryRow[], subtitle: string): string {
  const libs = LIB_NAMES.filter((l) => rows.some((r) => r.lib === l));
  const groups: Array<{ scenario: Scenario; size: SizeName }> = [];
  for (const r of rows) {
    if (!groups.some((g) => g.scenario === r.scenario && g.size === r.size)) {
      groups.push({ scenario: r.scenario, size: r.size });
    }
  }
  groups.sort((a, b) => SIZES.indexOf(a.size) - SIZES.indexOf(b.size));

  const barW = 18;
  const barGap = 3;
  const groupGap = 34;
  const groupW = libs.length * (barW + barGap) - barGap;
  const left = 64;
  const right = 24;
  const width = Math.max(760, left + 10 + right + groups.length * (groupW + groupGap) - groupGap);
  const panelH = 300;
  const headroom = 80; // panel title, note, and room for the rotated value labels above a 100 % bar
  const plotH = panelH - headroom - 52;
  const top = 96;
  const height = top + METRICS.length * panelH + 16;

  const out: string[] = [];
  out.push(
    `<svg xmlns='http://www.w3.org/2000/svg' width='${width}' height='${height}' viewBox='0 0 ${width} ${height}' ${FONT}>`,
    `<rect width='100%' height='100%' fill='#ffffff'/>`,
    `<text x='${left}' y='28' font-size='18' font-weight='bold' fill='#222'>AMQP 0-9-1 clients for Node.js — medians per scenario</text>`,
    `<text x='${left}' y='48' font-size='12' fill='#555'>${esc(subtitle)}</text>`,
  );
  // Legend
  let lx = left;
  for (const lib of libs) {
    out.push(
      `<rect x='${lx}' y='62' width='12' height='12' fill='${COLORS[lib]}'/>`,
      `<text x='${lx + 17}' y='72' font-size='12' fill='#222'>${esc(lib)}</text>`,
    );
    lx += 30 + lib.length * 7.2;
  }

  METRICS.forEach((metric, pi) => {
    const py = top + pi * panelH;
    const baseY = py + headroom + plotH;
    out.push(
      `<text x='${left}' y='${py + 14}' font-size='13' font-weight='bold' fill='#222'>${esc(metric.title)}</text>`,
    );
    out.push(`<text x='${left}' y='${py + 29}' font-size='10.5' fill='#777'>${esc(metric.note)}</text>`);
    for (const pct of [0, 25, 50, 75, 100]) {
      const y = baseY - (pct / 100) * plotH;
      out.push(
        `<line x1='${left}' x2='${width - right}' y1='${y}' y2='${y}' stroke='${pct === 0 ? '#444' : '#e3e3e3'}' stroke-width='1'/>`,
        `<text x='${left - 6}' y='${y + 3.5}' font-size='10' fill='#777' text-anchor='end'>${pct}%</text>`,
      );
    }
    groups.forEach((g, gi) => {
      const gx = left + 10 + gi * (groupW + groupGap);
      const cells = libs.map((lib) =>
        rows.find((r) => r.lib === lib && r.scenario === g.scenario && r.size === g.size),
      );
      const values = cells.map((c) => (c === undefined ? null : metric.pick(c)));
      const max = Math.max(0, ...values.map((v) => v ?? 0));
      values.forEach((v, li) => {
        const lib = libs[li];
        if (lib === undefined) return;
        const x = gx + li * (barW + barGap);
        const cx = x + barW / 2;
        const cell = cells[li];
        if (cell === undefined) return;
        if (v === null || max <= 0) {
          out.push(
            `<text x='${cx + 3.5}' y='${baseY - 4}' font-size='10' fill='#c0392b' transform='rotate(-90 ${cx + 3.5} ${baseY - 4})'>failed</text>`,
          );
          return;
        }
        const h = Math.max(1, (v / max) * plotH);
        out.push(
          `<rect x='${x}' y='${(baseY - h).toFixed(1)}' width='${barW}' height='${h.toFixed(1)}' fill='${COLORS[lib]}'><title>${esc(`${lib} ${g.scenario} ${g.size}: ${metric.format(v)} ${metric.unit}`)}</title></rect>`,
        );
        const b = metric.base?.(cell) ?? null;
        if (b !== null && b > 0) {
          const bh = Math.min(h, (b / max) * plotH);
          out.push(
            `<rect x='${x}' y='${(baseY - bh).toFixed(1)}' width='${barW}' height='${bh.toFixed(1)}' fill='#ffffff' fill-opacity='0.55'/>`,
          );
        }
        const ly = baseY - h - 4;
        out.push(
          `<text x='${cx + 3.5}' y='${ly.toFixed(1)}' font-size='10' fill='#333' transform='rotate(-90 ${cx + 3.5} ${ly.toFixed(1)})'>${esc(metric.format(v))}</text>`,
        );
      });
      // Two lines, because "publish-confirm · 1 MiB" is wider than a group.
      out.push(
        `<text x='${gx + groupW / 2}' y='${baseY + 16}' font-size='11' fill='#222' text-anchor='middle'>${esc(g.scenario)}</text>`,
        `<text x='${gx + groupW / 2}' y='${baseY + 30}' font-size='11' fill='#555' text-anchor='middle'>${g.size === '16B' ? '16 B' : '1 MiB'}</text>`,
      );
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function chartSubtitle(
  startedAt: string,
  host: Record<string, unknown>,
  rounds: number,
  quick: boolean,
): string {
  const broker = typeof host.broker === 'string' ? host.broker : 'RabbitMQ';
  const node = typeof host.node === 'string' ? host.node : '?';
  const cpus = typeof host.cpus === 'number' ? host.cpus : '?';
  const when = `${startedAt.slice(0, 16).replace('T', ' ')} UTC`;
  return `${when} · ${broker} · Node ${node} · ${cpus} CPU · median of ${rounds} round(s)${quick ? ' (quick)' : ''}`;
}
