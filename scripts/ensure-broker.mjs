#!/usr/bin/env node
/**
 * Makes sure the default RabbitMQ node (the one `rabbitmq-server` starts with the machine's own
 * configuration; rabbit@localhost on 127.0.0.1:5672 here) is up before `npm test` and `npm start`.
 *
 *   node scripts/ensure-broker.mjs
 *
 * - Up already (127.0.0.1:5672 answers the AMQP 0-9-1 protocol header with connection.start, and
 *   `rabbitmq-diagnostics -q ping` succeeds): prints one line, exits 0. Idempotent.
 * - Down: runs `rabbitmq-server -detached` and waits up to 60 s for both checks to pass.
 * - Cannot be brought up: prints what failed, the tail of the broker's log and how to fix it; exits 1.
 *
 * The AMQP probe reads the broker's first frame instead of only connecting, so that some other program
 * holding the port is not mistaken for RabbitMQ. If AMQP answers but the CLI cannot reach the node
 * (a cookie or permission problem), it warns and exits 0: clients work, only tests that call rabbitmqctl
 * will fail, and starting a second server would not help since the port is taken.
 *
 * Plain Node ESM with no dependencies, so it runs before anything is built or installed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

const HOST = '127.0.0.1';
// Overridable only to test this script against a throw-away node (started through the usual RABBITMQ_*
// variables, which rabbitmq-server and rabbitmq-diagnostics honour); the project's broker is on 5672.
const PORT = Number(process.env.WARREN_BROKER_PORT ?? 5672);
const START_TIMEOUT_MS = 60_000;
// Once AMQP answers, how long to keep retrying a failing ping before settling for a warning.
const PING_GRACE_MS = 10_000;
const LOG_DIR = process.env.RABBITMQ_LOG_BASE ?? '/var/log/rabbitmq';

/** The Debian wrappers in /usr/sbin switch to the rabbitmq user when run as root. */
function tool(name) {
  const sbin = join('/usr/sbin', name);
  return existsSync(sbin) ? sbin : name;
}

/**
 * 'amqp' when the port answers the protocol header with a connection.start method frame;
 * 'closed' when nothing listens; 'other' when something listens but does not answer like RabbitMQ.
 */
function probeAmqp(timeoutMs = 3000) {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port: PORT });
    let received = Buffer.alloc(0);
    let settled = false;
    const done = (result) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done('other'));
    socket.once('connect', () => socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 11) return;
      // Frame type 1 (method) on channel 0, then class 10 (connection) method 10 (start).
      const isStart =
        received[0] === 1 &&
        received.readUInt16BE(1) === 0 &&
        received.readUInt16BE(7) === 10 &&
        received.readUInt16BE(9) === 10;
      done(isStart ? 'amqp' : 'other');
    });
    socket.once('end', () => done('other'));
    socket.once('error', (error) => done(error.code === 'ECONNREFUSED' ? 'closed' : 'other'));
  });
}

/** { ok, output } of `rabbitmq-diagnostics -q ping`; a missing command counts as a failure with a reason. */
function ping() {
  const result = spawnSync(tool('rabbitmq-diagnostics'), ['-q', 'ping'], { encoding: 'utf8', timeout: 30_000 });
  if (result.error) return { ok: false, output: result.error.message, missing: result.error.code === 'ENOENT' };
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  return { ok: result.status === 0, output, missing: false };
}

function logFiles() {
  try {
    return readdirSync(LOG_DIR)
      .filter((f) => f.endsWith('.log') || f.startsWith('startup_'))
      .map((f) => join(LOG_DIR, f));
  } catch {
    return [];
  }
}

function sizes() {
  const out = new Map();
  for (const f of logFiles()) {
    try {
      out.set(f, statSync(f).size);
    } catch {
      // Unreadable or gone: nothing to compare.
    }
  }
  return out;
}

/** What the broker wrote to its logs since `before` (a map of sizes), last lines of each file. */
function newLogText(before, lines = 30) {
  const parts = [];
  for (const f of logFiles()) {
    try {
      const text = readFileSync(f, 'utf8')
        .slice(before.get(f) ?? 0)
        .trimEnd();
      if (text) parts.push(`--- ${f} ---\n${text.split('\n').slice(-lines).join('\n')}`);
    } catch {
      // Not readable by this user: the fix text points at the directory.
    }
  }
  return parts.join('\n');
}

/** The reason line of an Erlang crash dump written since `sinceMs`: a node that dies while booting
 * detached leaves no other trace when it fails before its logging starts (e.g. a bad rabbitmq.conf). */
function crashSlogan(sinceMs) {
  // rabbitmq-server writes it to its log directory, or to its working directory (the wrappers cd to the
  // rabbitmq user's home) when it dies before reading its configuration.
  for (const dir of [LOG_DIR, '/var/lib/rabbitmq']) {
    const file = join(dir, 'erl_crash.dump');
    try {
      if (statSync(file).mtimeMs < sinceMs) continue;
      const slogan = readFileSync(file, 'utf8')
        .slice(0, 4000)
        .split('\n')
        .find((l) => l.startsWith('Slogan: '));
      if (slogan) return `${file}: ${slogan}`;
    } catch {
      // No dump there, or not readable by this user.
    }
  }
  return undefined;
}

function fail(what, details = '') {
  const fixes = [
    'How to fix:',
    '  - RabbitMQ installed?     apt-get update && apt-get install -y rabbitmq-server',
    '  - Start it by hand:       rabbitmq-server -detached   (as root; or: runuser -u rabbitmq -- rabbitmq-server -detached)',
    '    or in the foreground to see why it stops:  runuser -u rabbitmq -- rabbitmq-server',
    `  - Port taken?             ss -ltnp | grep ':${PORT}'`,
    '  - Erlang cookie:          /var/lib/rabbitmq/.erlang.cookie must belong to rabbitmq with mode 400',
    '  - Configuration:          /etc/rabbitmq/rabbitmq-env.conf and /etc/rabbitmq/rabbitmq.conf',
    `  - Logs:                   ${LOG_DIR}/`,
  ].join('\n');
  process.stderr.write(`ensure-broker: ${what}\n${details ? `${details}\n` : ''}${fixes}\n`);
  process.exit(1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const first = await probeAmqp();
  if (first === 'amqp') {
    const p = ping();
    if (p.ok) {
      console.log(`broker: RabbitMQ is up on ${HOST}:${PORT}`);
    } else {
      console.warn(
        `broker: RabbitMQ answers AMQP on ${HOST}:${PORT}, but \`rabbitmq-diagnostics ping\` failed ` +
          `(${p.output.split('\n')[0] || 'no output'}); tests that run rabbitmqctl will fail`,
      );
    }
    return;
  }

  const p = ping();
  if (p.missing) fail(`nothing answers on ${HOST}:${PORT} and rabbitmq-diagnostics is not installed.`);
  if (first === 'other' && !p.ok) {
    fail(
      `something listens on ${HOST}:${PORT} but does not answer like RabbitMQ, and rabbitmq-diagnostics ping fails.`,
      p.output,
    );
  }

  const before = sizes();
  const started = Date.now();
  if (p.ok) {
    // The node runs but AMQP does not answer yet: it is still booting, so wait rather than start another.
    console.log(`broker: RabbitMQ node is running but ${HOST}:${PORT} does not answer yet; waiting...`);
  } else {
    console.log('broker: RabbitMQ is not running; starting it with `rabbitmq-server -detached`...');
    const start = spawnSync(tool('rabbitmq-server'), ['-detached'], { encoding: 'utf8', timeout: 30_000 });
    if (start.error) fail(`could not run rabbitmq-server: ${start.error.message}`);
    if (start.status !== 0) {
      fail(
        `rabbitmq-server -detached exited with code ${start.status}.`,
        `${start.stdout ?? ''}${start.stderr ?? ''}`.trim(),
      );
    }
  }

  let last = { ok: false, output: '' };
  let amqpSince;
  while (Date.now() - started < START_TIMEOUT_MS) {
    await sleep(500);
    const written = newLogText(before);
    const slogan = crashSlogan(started - 1000);
    if (slogan || /BOOT FAILED|Error during startup|Kernel pid terminated/.test(written)) {
      fail('RabbitMQ failed to boot.', [slogan, written].filter(Boolean).join('\n'));
    }
    if ((await probeAmqp()) !== 'amqp') continue;
    amqpSince ??= Date.now();
    last = ping();
    const after = `after ${((Date.now() - started) / 1000).toFixed(1)} s`;
    if (last.ok) {
      console.log(`broker: RabbitMQ is up on ${HOST}:${PORT} (${after})`);
      return;
    }
    if (Date.now() - amqpSince > PING_GRACE_MS) {
      console.warn(
        `broker: RabbitMQ answers AMQP on ${HOST}:${PORT} (${after}), but \`rabbitmq-diagnostics ping\` fails ` +
          `(${last.output.split('\n')[0] || 'no output'}); tests that run rabbitmqctl will fail`,
      );
      return;
    }
  }
  fail(
    `RabbitMQ did not answer on ${HOST}:${PORT} within ${START_TIMEOUT_MS / 1000} s.`,
    [last.output && `last rabbitmq-diagnostics ping: ${last.output}`, newLogText(before)].filter(Boolean).join('\n'),
  );
}

await main();
