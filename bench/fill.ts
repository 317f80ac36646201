// Publishes COUNT bodies of SIZE bytes into QUEUE with the floor and exits: the consumers-N scenario runs it as
// its own process, so the messages arrive while the consumers are attached and the publishing's CPU and memory
// are not charged to the library under test. Once connected it prints "ready" and waits for a line on stdin, so
// the parent starts its clock after this process's start-up, not before.
//
//   node --import tsx bench/fill.ts URL QUEUE COUNT SIZE

import floor from './libs/floor.js';

async function main(): Promise<void> {
  const [url, queue, countArg, sizeArg] = process.argv.slice(2);
  const count = Number(countArg);
  const size = Number(sizeArg);
  if (url === undefined || queue === undefined || !(count > 0) || !(size >= 0)) {
    throw new Error('usage: fill.ts URL QUEUE COUNT SIZE');
  }
  const s = await floor.connect(url);
  try {
    process.stdout.write('ready\n');
    await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
    process.stdin.pause();
    const body = Buffer.alloc(size, 0x61);
    for (let i = 0; i < count; i++) {
      const p = s.publish(queue, body);
      if (p !== undefined) await p;
    }
    await s.flush();
  } finally {
    await s.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`fill: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
