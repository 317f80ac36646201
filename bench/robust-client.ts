// npx tsx bench/robust-client.ts [--src DIR ...] [--count N] [--rounds R] [--url URL]
//
// The robust client's own paths, which the main benchmark (low-level channels) does not take:
// `client.publisher()` with confirms and `client.consume()` with acks, 16 B bodies. Each `--src` is the
// src/ folder of a warren checkout (default: this one's), so two commits can be compared in one run:
//
//   git worktree add /tmp/warren-before <commit> && ln -s "$PWD/node_modules" /tmp/warren-before/
//   npx tsx bench/robust-client.ts --src src --src /tmp/warren-before/src --rounds 5
//
// Every round runs each source once, in its own child process, interleaved; medians are printed.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from './report.js';

interface Sample {
  publishRate: number;
  publishCpuUs: number;
  consumeRate: number;
  consumeCpuUs: number;
}

interface RobustModule {
  createClient(options: { urls: string[] }): {
    declareQueue(name: string, options: { durable: boolean }): Promise<unknown>;
    deleteQueue(name: string): Promise<unknown>;
    publisher(): { publish(exchange: string, routingKey: string, body: Buffer): Promise<void> };
    consume(
      queue: string,
      handler: (msg: unknown) => void,
      options: { prefetch: number; concurrency: number },
    ): { cancel(): Promise<void> };
    close(): Promise<void>;
  };
}

function flags(name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.argv.length; i++) if (process.argv[i] === name) out.push(process.argv[i + 1] ?? '');
  return out;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const url = flags('--url')[0] ?? process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const count = Number(flags('--count')[0] ?? 30_000);

async function child(src: string): Promise<Sample> {
  const warren = (await import(pathToFileURL(path.join(src, 'index.ts')).href)) as RobustModule;
  const client = warren.createClient({ urls: [url] });
  const queue = `bench-robust-${process.pid}`;
  await client.declareQueue(queue, { durable: false });
  const body = Buffer.alloc(16, 'x');
  const pub = client.publisher();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: count }, () => pub.publish('', queue, body)));
  const t1 = process.hrtime.bigint();
  const cpu1 = process.cpuUsage(cpu0);
  let seen = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const cpu2 = process.cpuUsage();
  const t2 = process.hrtime.bigint();
  const sub = client.consume(
    queue,
    () => {
      if (++seen === count) done();
    },
    { prefetch: 1000, concurrency: 100 },
  );
  await all;
  const t3 = process.hrtime.bigint();
  const cpu3 = process.cpuUsage(cpu2);
  await sub.cancel();
  await client.deleteQueue(queue);
  await client.close();
  const secs = (a: bigint, b: bigint) => Number(b - a) / 1e9;
  return {
    publishRate: count / secs(t0, t1),
    publishCpuUs: (cpu1.user + cpu1.system) / count,
    consumeRate: count / secs(t2, t3),
    consumeCpuUs: (cpu3.user + cpu3.system) / count,
  };
}

async function main(): Promise<void> {
  const childSrc = flags('--child')[0];
  if (childSrc !== undefined) {
    process.stdout.write(`${JSON.stringify(await child(childSrc))}\n`);
    return;
  }
  const sources = flags('--src');
  if (sources.length === 0) sources.push(path.join(here, '..', 'src'));
  const rounds = Number(flags('--rounds')[0] ?? 3);
  const samples = new Map<string, Sample[]>(sources.map((s) => [s, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const src of sources) {
      const run = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(import.meta.url),
          '--child',
          path.resolve(src),
          '--count',
          String(count),
          '--url',
          url,
        ],
        { encoding: 'utf8', timeout: 300_000 },
      );
      if (run.status !== 0) throw new Error(`${src}: exit ${run.status}\n${run.stderr}`);
      const sample = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Sample;
      samples.get(src)!.push(sample);
      process.stderr.write(`round ${round} ${src}: ${JSON.stringify(sample)}\n`);
    }
  }
  process.stdout.write(
    `\n| src | publish+confirm msg/s (CPU µs/msg) | consume+ack msg/s (CPU µs/msg) |\n|---|--:|--:|\n`,
  );
  for (const [src, list] of samples) {
    const m = (k: keyof Sample) => median(list.map((s) => s[k])) ?? Number.NaN;
    process.stdout.write(
      `| ${src} | ${Math.round(m('publishRate')).toLocaleString('en')} (${m('publishCpuUs').toFixed(2)}) | ` +
        `${Math.round(m('consumeRate')).toLocaleString('en')} (${m('consumeCpuUs').toFixed(2)}) |\n`,
    );
  }
  process.stdout.write(`\n${count} messages of 16 B per run, medians of ${rounds} rounds.\n`);
}

await main();
