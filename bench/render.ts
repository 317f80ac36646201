// Re-renders the table and chart from a results file without running anything, e.g. after changing the chart:
//   tsx bench/render.ts [bench/results/latest.json] [out.svg]

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { coreRows, footnotes, markdownTable, type ResultsFile } from './report.js';
import { extendedMarkdown } from './report-extended.js';
import { chartSubtitle, renderChart } from './svg.js';

function isResultsFile(v: unknown): v is ResultsFile {
  return typeof v === 'object' && v !== null && 'schema' in v && v.schema === 1 && 'summary' in v;
}

const input = process.argv[2] ?? fileURLToPath(new URL('./results/latest.json', import.meta.url));
const output = process.argv[3] ?? input.replace(/\.json$/, '.svg');
const data: unknown = JSON.parse(readFileSync(input, 'utf8'));
if (!isResultsFile(data)) throw new Error(`${input} is not a bench results file`);
const rounds = typeof data.options.rounds === 'number' ? data.options.rounds : 0;
const subtitle = chartSubtitle(data.startedAt, data.host, rounds, data.options.quick === true);
writeFileSync(output, renderChart(coreRows(data.summary), subtitle));
const notes = footnotes(data.runs);
const extended = extendedMarkdown(data.summary);
process.stdout.write(
  `${markdownTable(data.summary)}\n\n${notes.length > 0 ? `${notes.join('\n')}\n\n` : ''}${extended === '' ? '' : `${extended}\n\n`}wrote ${output}\n`,
);
