/**
 * RabbitMQ tutorial 6, "RPC": a server answers Fibonacci requests from a queue; the caller sends
 * each request with a correlation id and gets the reply over direct reply-to. The robust client
 * does the bookkeeping (reply consumer, correlation ids, timeouts) and survives reconnects.
 *
 *   node --import tsx examples/06-rpc.ts
 */
import { createClient } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.rpc_queue';

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

const client = createClient(url, { name: 'rpc-example' });
await client.declareQueue(queue, { autoDelete: true });

// The server: whatever the handler returns is published to the caller's replyTo.
const server = client.rpcServer(queue, (request) => {
  const n = Number(request.body.toString());
  console.log(` [.] fib(${n})`);
  return String(fib(n));
});
await server.ready();

// The caller.
for (const n of [10, 20, 30]) {
  const reply = await client.rpc(queue, String(n), { timeout: 5000 });
  console.log(` [x] fib(${n}) = ${reply.body.toString()}`);
}

await client.close();
