/**
 * `warren rpc-server -q QUEUE --echo | --exec CMD`: answers requests from a queue.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import type { Message } from '../../channel/message.js';
import type { Subscription } from '../../client/subscription.js';
import type { RpcReply } from '../../client/rpc-server.js';
import { ChannelClosedByServer, REPLY_CODES } from '../../errors.js';
import { UsageError } from '../args.js';
import { closeClient, command, EXIT, emit, GLOBAL_OPTIONS, openClient, countOption } from '../common.js';

/** Runs `cmd` in a shell with `input` on its stdin; resolves with its stdout and exit code. */
function execShell(cmd: string, input: Buffer): Promise<{ stdout: Buffer; code: number }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, { shell: true, stdio: ['pipe', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', () => resolve({ stdout: Buffer.alloc(0), code: 127 }));
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out), code: code ?? 1 }));
    child.stdin.on('error', () => {}); // a command that does not read its input is fine
    child.stdin.end(input);
  });
}

export const rpcServer = command({
  spec: {
    name: 'rpc-server',
    summary: 'Answer RPC requests from a queue: echo them, or reply with the output of a shell command.',
    details:
      'The queue is declared (auto-delete) if it does not exist. Each request is acknowledged after its reply\n' +
      'was confirmed by the broker. Reconnects after a cut. Runs until Ctrl-C, or until COUNT requests were answered.',
    positionals: [],
    options: {
      queue: { type: 'string', short: 'q', value: 'QUEUE', description: 'Request queue (required)' },
      echo: { type: 'boolean', description: 'Reply with the request body' },
      exec: { type: 'string', value: 'CMD', description: 'Reply with the stdout of CMD run with the body on stdin' },
      count: countOption('requests'),
      prefetch: {
        type: 'number',
        integer: true,
        min: 1,
        default: 10,
        description: 'Requests handled at once (1 with -n)',
      },
      ...GLOBAL_OPTIONS,
    },
    examples: ['warren rpc-server -q rpc.echo --echo', "warren rpc-server -q rpc.upper --exec 'tr a-z A-Z'"],
  },
  async run({ options: o }, ctx) {
    if (o.queue === undefined) throw new UsageError('say which queue: -q QUEUE', 'rpc-server');
    if (o.echo === (o.exec !== undefined))
      throw new UsageError('give exactly one of --echo or --exec CMD', 'rpc-server');
    const queue = o.queue;
    const limit = o.count ?? Number.POSITIVE_INFINITY;
    const client = await openClient(o, ctx);
    let failure: unknown;
    try {
      // Use the queue as it is if it exists; otherwise make one that goes away with the server.
      try {
        await client.declareQueue(queue, { passive: true });
      } catch (err) {
        if (!(err instanceof ChannelClosedByServer && err.replyCode === REPLY_CODES.NOT_FOUND)) throw err;
        await client.declareQueue(queue, { autoDelete: true });
      }
      let handled = 0;
      let stop!: () => void;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      let server: Subscription | undefined;
      const handle = async (request: Message): Promise<RpcReply> => {
        handled++;
        if (handled >= limit) {
          // No handler starts after this one; it still answers, then the server stops.
          void server?.cancel();
          stop();
        }
        const { correlationId, replyTo } = request.properties;
        let reply: RpcReply;
        if (o.echo) {
          const contentType = request.properties.contentType;
          reply = contentType === undefined ? request.body : { body: request.body, properties: { contentType } };
        } else {
          const r = await execShell(o.exec!, request.body);
          reply = { body: r.stdout, properties: { headers: { 'x-exit-code': r.code } } };
        }
        const bytes = Buffer.isBuffer(reply)
          ? reply.length
          : Buffer.byteLength(typeof reply === 'string' ? reply : reply.body);
        emit(ctx, o.json, `answered ${correlationId ?? '(no correlation id)'} (${bytes} B)`, {
          correlationId,
          replyTo,
          bytes,
        });
        return reply;
      };
      // With COUNT, one request at a time, so that exactly COUNT are answered.
      server = client.rpcServer(queue, handle, {
        prefetch: o.prefetch,
        concurrency: o.count === undefined ? o.prefetch : 1,
      });
      server.on('handlerError', (err) => {
        failure ??= err;
        stop();
      });
      server.on('cancel', (err) => {
        failure ??= err;
        stop();
      });
      ctx.signal.addEventListener('abort', stop, { once: true });
      await Promise.race([server.ready(), stopped]);
      if (!o.json) ctx.io.stderr.write(`warren rpc-server: answering requests on '${queue}' (Ctrl-C to stop)\n`);
      await stopped;
      ctx.signal.removeEventListener('abort', stop);
      await server.cancel();
    } finally {
      await closeClient(client);
    }
    if (failure !== undefined) throw failure;
    return EXIT.OK;
  },
});
