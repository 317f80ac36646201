/**
 * The `warren` command, run as real processes against the broker: output, exit codes, typed
 * one-line errors, JSON mode, stdin, Ctrl-C, and cleanup.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { connectionPid, rabbitmqctl } from '../support/broker.js';
import { AMQP_URL, startWarren, uniqueName, waitForOutput, warren } from './helpers.js';

const created: string[] = [];
function queueName(prefix: string): string {
  const q = uniqueName(prefix);
  created.push(q);
  return q;
}

after(async () => {
  // Whatever a failed test left behind.
  for (const q of created) await warren(['queue', 'delete', q]).catch(() => {});
});

/** The one error line a failing command prints: "warren <cmd>: Name [CODE]: message". */
function errorLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  return lines[0] ?? '';
}

describe('warren CLI', { concurrency: 4 }, () => {
  test('--help, --version and per-command help exit 0', async () => {
    const top = await warren(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Usage: warren <command>/);
    for (const cmd of [
      'publish',
      'consume',
      'rpc',
      'rpc-server',
      'perf',
      'bind',
      'queue declare',
      'exchange declare',
    ]) {
      assert.match(top.stdout, new RegExp(`\\n  ${cmd} `), `top help lists ${cmd}`);
    }
    const pub = await warren(['publish', '--help']);
    assert.equal(pub.code, 0);
    assert.match(pub.stdout, /Usage: warren publish \[options\] \[BODY\]/);
    assert.match(pub.stdout, /-H, --header K=V/);
    const q = await warren(['queue', 'purge', '-h']);
    assert.equal(q.code, 0);
    assert.match(q.stdout, /Usage: warren queue purge \[options\] NAME/);
    const v = await warren(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  });

  test('usage errors exit 2 with a hint', async () => {
    const unknown = await warren(['consume', '-q', 'x', '--prefetc', '3']);
    assert.equal(unknown.code, 2);
    assert.match(
      errorLine(unknown.stderr),
      /^warren consume: UsageError \[USAGE\]: unknown option --prefetc \(did you mean --prefetch\?\)$/,
    );
    const cmd = await warren(['pubilsh']);
    assert.equal(cmd.code, 2);
    assert.match(cmd.stderr, /did you mean 'publish'/);
    const missing = await warren(['publish', 'body']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /-q QUEUE or -e EXCHANGE/);
    const badNumber = await warren(['consume', '-q', 'x', '-n', 'many']);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--count needs a number, got 'many'/);
  });

  test('publish, queue info and consume round trip, with headers, --lines and --json', async () => {
    const q = queueName('roundtrip');
    const declared = await warren(['queue', 'declare', q, '--json']);
    assert.equal(declared.code, 0, declared.stderr);
    assert.deepEqual(JSON.parse(declared.stdout), { queue: q, messageCount: 0, consumerCount: 0 });

    const one = await warren([
      'publish',
      '-q',
      q,
      '-H',
      'source=cli',
      '-H',
      'attempt:=2',
      '--persistent',
      '--message-id',
      'm-1',
      'hello world',
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, `published 1 message to queue '${q}': 1 confirmed\n`);

    const lines = await warren(['publish', '-q', q, '--lines', '--json'], { input: 'a\nb\n\nc\n' });
    assert.equal(lines.code, 0, lines.stderr);
    assert.deepEqual(JSON.parse(lines.stdout), { published: 3, confirmed: 3, failed: 0, exchange: '', routingKey: q });

    const info = await warren(['queue', 'info', q]);
    assert.equal(info.stdout, `queue '${q}': 4 messages ready, 0 consumers\n`);

    const json = await warren(['consume', '-q', q, '-n', '1', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const msg = JSON.parse(json.stdout) as { body: string; properties: Record<string, unknown> };
    assert.equal(msg.body, 'hello world');
    assert.deepEqual(msg.properties.headers, { source: 'cli', attempt: 2 });
    assert.equal(msg.properties.deliveryMode, 2);
    assert.equal(msg.properties.messageId, 'm-1');

    const plain = await warren(['consume', '-q', q, '-n', '3']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, 'a\nb\nc\n');

    const empty = await warren(['queue', 'info', q, '--json']);
    assert.equal(JSON.parse(empty.stdout).messageCount, 0, 'everything printed was acked');
    const del = await warren(['queue', 'delete', q]);
    assert.equal(del.code, 0);
    assert.equal(del.stdout, `queue '${q}' deleted with 0 messages\n`);
  });

  test('consume acks only what it printed; --timeout reports a shortfall with exit 6', async () => {
    const q = queueName('partial');
    assert.equal((await warren(['publish', '-q', q, '--declare', '--count', '5', 'x'])).code, 0);
    const two = await warren(['consume', '-q', q, '-n', '2', '--prefetch', '5']);
    assert.equal(two.code, 0, two.stderr);
    assert.equal(two.stdout, 'x\nx\n');
    assert.equal(JSON.parse((await warren(['queue', 'info', q, '--json'])).stdout).messageCount, 3);

    const short = await warren(['consume', '-q', q, '-n', '10', '--timeout', '1']);
    assert.equal(short.code, 6);
    assert.equal(short.stdout, 'x\nx\nx\n');
    assert.match(errorLine(short.stderr), /TimeoutError \[TIMEOUT\]: only 3 of 10 messages arrived within 1 s/);
    const purged = await warren(['queue', 'purge', q]);
    assert.equal(purged.stdout, `queue '${q}' purged: 0 messages removed\n`);
    await warren(['queue', 'delete', q]);
  });

  test('consume stops cleanly on Ctrl-C (SIGINT), acking what it printed', async () => {
    const q = queueName('sigint');
    assert.equal((await warren(['publish', '-q', q, '--declare', 'first'])).code, 0);
    const run = startWarren(['consume', '-q', q]);
    await waitForOutput(run.stdout, /first\n/);
    run.child.kill('SIGINT');
    const r = await run.result;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse((await warren(['queue', 'info', q, '--json'])).stdout).messageCount, 0);
    await warren(['queue', 'delete', q]);
  });

  test('consume --no-ack: the broker forgets what it sent', async () => {
    const q = queueName('noack');
    assert.equal((await warren(['publish', '-q', q, '--declare', '--count', '3', 'y'])).code, 0);
    const r = await warren(['consume', '-q', q, '--no-ack', '-n', '3']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'y\ny\ny\n');
    assert.equal(JSON.parse((await warren(['queue', 'info', q, '--json'])).stdout).messageCount, 0);
    await warren(['queue', 'delete', q]);
  });

  test('a long-running consume survives a connection closed by the broker', async () => {
    const q = queueName('survive');
    const name = uniqueName('consumer-connection');
    assert.equal((await warren(['publish', '-q', q, '--declare', 'before'])).code, 0);
    const run = startWarren(['consume', '-q', q, '--name', name], { timeoutMs: 60_000 });
    try {
      await waitForOutput(run.stdout, /before\n/);
      await rabbitmqctl('close_connection', await connectionPid(name), 'test: forced close');
      await waitForOutput(run.stderr, /connection lost \(CONNECTION_CLOSED_BY_SERVER\), reconnecting/);
      await waitForOutput(run.stderr, /reconnected/);
      assert.equal((await warren(['publish', '-q', q, 'after'])).code, 0);
      await waitForOutput(run.stdout, /before\nafter\n/);
    } finally {
      run.child.kill('SIGINT');
    }
    const r = await run.result;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse((await warren(['queue', 'info', q, '--json'])).stdout).messageCount, 0);
    await warren(['queue', 'delete', q]);
  });

  test('an unroutable publish exits 5; --declare creates the queue', async () => {
    const q = queueName('missing');
    const r = await warren(['publish', '-q', q, 'lost?']);
    assert.equal(r.code, 5);
    assert.equal(r.stdout, `published 1 message to queue '${q}': 0 confirmed, 1 not confirmed\n`);
    assert.match(errorLine(r.stderr), /^warren publish: MessageReturned \[MESSAGE_RETURNED\]: .*312 NO_ROUTE/);
    const json = await warren(['publish', '-q', q, 'lost?', '--json']);
    assert.equal(json.code, 5);
    assert.equal(JSON.parse(json.stderr.trim()).error.code, 'MESSAGE_RETURNED');
    const declared = await warren(['publish', '-q', q, '--declare', 'kept']);
    assert.equal(declared.code, 0, declared.stderr);
    const again = await warren(['publish', '-q', q, '--declare', 'kept too']);
    assert.equal(again.code, 0, 'an existing queue is used as it is');
    assert.equal(JSON.parse((await warren(['queue', 'info', q, '--json'])).stdout).messageCount, 2);
    await warren(['queue', 'delete', q]);
  });

  test('broker refusals exit 4 with the reply code in one line', async () => {
    const ex = await warren(['publish', '-e', uniqueName('no-such-exchange'), 'x']);
    assert.equal(ex.code, 4);
    assert.match(
      errorLine(ex.stderr),
      /^warren publish: ChannelClosedByServer \[CHANNEL_CLOSED_BY_SERVER\]: .*404 NOT_FOUND - no exchange/,
    );
    const info = await warren(['queue', 'info', uniqueName('no-such-queue'), '--json']);
    assert.equal(info.code, 4);
    const err = JSON.parse(info.stderr.trim()) as { error: { name: string; replyCode: number } };
    assert.equal(err.error.name, 'ChannelClosedByServer');
    assert.equal(err.error.replyCode, 404);
  });

  test('connection failures exit 3 and never print the password', async () => {
    const refused = await warren(['queue', 'info', 'x', '--url', 'amqp://guest:guest@127.0.0.1:1']);
    assert.equal(refused.code, 3);
    assert.match(errorLine(refused.stderr), /^warren queue info: SocketError \[SOCKET_ERROR\]:/);
    const badLogin = await warren(['queue', 'info', 'x'], {
      env: { AMQP_URL: 'amqp://guest:s3cr3t-pw@127.0.0.1:5672' },
    });
    assert.equal(badLogin.code, 3);
    assert.match(errorLine(badLogin.stderr), /AuthenticationError \[AUTHENTICATION_ERROR\]/);
    assert.doesNotMatch(badLogin.stderr + badLogin.stdout, /s3cr3t-pw/);
    // --url wins over AMQP_URL.
    const q = queueName('url');
    const ok = await warren(['queue', 'declare', q, '--url', AMQP_URL], {
      env: { AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' },
    });
    assert.equal(ok.code, 0, ok.stderr);
    await warren(['queue', 'delete', q]);
  });

  test('exchange declare, bind, publish -e -k, unbind, exchange delete', async () => {
    const ex = uniqueName('topic');
    const q = queueName('bound');
    assert.equal(
      (await warren(['exchange', 'declare', ex, 'topic', '--no-durable'])).stdout,
      `exchange '${ex}' (topic) declared\n`,
    );
    assert.equal((await warren(['queue', 'declare', q, '--no-durable'])).code, 0);
    assert.equal(
      (await warren(['bind', q, ex, 'logs.*'])).stdout,
      `queue '${q}' bound to exchange '${ex}' with key 'logs.*'\n`,
    );
    const routed = await warren(['publish', '-e', ex, '-k', 'logs.error', 'disk full']);
    assert.equal(routed.code, 0, routed.stderr);
    const unrouted = await warren(['publish', '-e', ex, '-k', 'metrics.cpu', '--no-mandatory', 'dropped']);
    assert.equal(unrouted.code, 0, 'with --no-mandatory an unroutable message is confirmed and dropped');
    const got = await warren(['consume', '-q', q, '-n', '1', '--json']);
    const msg = JSON.parse(got.stdout) as { body: string; exchange: string; routingKey: string };
    assert.deepEqual([msg.body, msg.exchange, msg.routingKey], ['disk full', ex, 'logs.error']);
    assert.equal((await warren(['unbind', q, ex, 'logs.*'])).code, 0);
    assert.equal((await warren(['publish', '-e', ex, '-k', 'logs.error', 'x'])).code, 5, 'no longer routed');
    assert.equal((await warren(['exchange', 'delete', ex])).stdout, `exchange '${ex}' deleted\n`);
    await warren(['queue', 'delete', q]);
  });

  test('queue declare with a type and arguments', async () => {
    const q = queueName('quorum');
    const r = await warren([
      'queue',
      'declare',
      q,
      '--type',
      'quorum',
      '--max-length',
      '10',
      '-a',
      'x-delivery-limit:=3',
    ]);
    assert.equal(r.code, 0, r.stderr);
    // Declaring it again with other arguments is refused by the broker: 406.
    const clash = await warren(['queue', 'declare', q, '--type', 'classic']);
    assert.equal(clash.code, 4);
    assert.match(clash.stderr, /406 PRECONDITION_FAILED/);
    assert.equal((await warren(['queue', 'delete', q])).code, 0);
  });

  test('rpc-server --echo answers rpc, then exits after -n requests', async () => {
    const q = queueName('rpc');
    const server = startWarren(['rpc-server', '-q', q, '--echo', '-n', '2']);
    await waitForOutput(server.stderr, /answering requests/);
    const r = await warren(['rpc', '-q', q, 'ping']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ping\n');
    const j = await warren(['rpc', '-q', q, '--json'], { input: '{"n":1}' });
    assert.equal(j.code, 0, j.stderr);
    const reply = JSON.parse(j.stdout) as { body: string; ms: number };
    assert.equal(reply.body, '{"n":1}');
    assert.ok(reply.ms >= 0);
    const s = await server.result;
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout.trim().split('\n').length, 2);
  });

  test('rpc-server --exec replies with the output of a command', async () => {
    const q = queueName('rpc-exec');
    const server = startWarren(['rpc-server', '-q', q, '--exec', 'tr a-z A-Z', '-n', '1']);
    await waitForOutput(server.stderr, /answering requests/);
    const r = await warren(['rpc', '-q', q, 'shout']);
    assert.equal(r.stdout, 'SHOUT\n');
    assert.equal((await server.result).code, 0);
  });

  test('rpc without a server: exit 5 for a missing queue, 6 after --timeout', async () => {
    const missing = await warren(['rpc', '-q', uniqueName('no-server'), 'x']);
    assert.equal(missing.code, 5);
    assert.match(missing.stderr, /MessageReturned/);
    const q = queueName('no-consumer');
    await warren(['queue', 'declare', q, '--no-durable']);
    const slow = await warren(['rpc', '-q', q, 'x', '--timeout', '0.5']);
    assert.equal(slow.code, 6);
    assert.match(errorLine(slow.stderr), /TimeoutError \[TIMEOUT\]: no reply from/);
    await warren(['queue', 'delete', q]);
  });

  test('--debug and WARREN_DEBUG=frames trace frames with the password redacted', async () => {
    const q = queueName('debug');
    const url = AMQP_URL;
    const r = await warren(['queue', 'declare', q, '--no-durable', '--debug', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warren < ch=0 connection\.start /m);
    assert.match(r.stderr, /^warren > ch=0 connection\.start-ok .*"response":"<redacted>"/m);
    assert.match(r.stderr, /^warren > ch=1 queue\.declare .*"queue":"warren-cli-test-/m);
    assert.match(r.stderr, /^warren < ch=1 queue\.declare-ok /m);
    assert.doesNotMatch(r.stderr, /\\u0000guest/);
    const env = await warren(['queue', 'delete', q], { env: { WARREN_DEBUG: 'frames' } });
    assert.equal(env.code, 0);
    assert.match(env.stderr, /^warren > ch=1 queue\.delete /m);
    assert.match(env.stderr, /^warren < ch=0 connection\.close-ok/m);
  });
});
