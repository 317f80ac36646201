/**
 * A readiness endpoint for a service that consumes: `GET /health` answers 200 with the client's
 * health while it is connected and subscribed, 503 otherwise; `GET /stats` gives the whole snapshot.
 * The example listens on a free loopback port, asks itself once, and stops.
 *
 *   node --import tsx examples/health-endpoint.ts
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.health';

const client = createClient(url, { name: 'health-example' });
await client.declareQueue(queue, { autoDelete: true });
const sub = client.consume(queue, async () => {}, { prefetch: 20 });

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    const health = client.health();
    res.writeHead(health.ok ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify(health));
  } else if (req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(client.stats()));
  } else {
    res.writeHead(404).end();
  }
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

await sub.ready();
const health = await fetch(`http://127.0.0.1:${port}/health`);
console.log(`GET /health -> ${health.status} ${await health.text()}`);
const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as {
  state: string;
  consumers: { queue: string; prefetch: number }[];
};
console.log(
  `GET /stats -> state=${stats.state} consumers=${stats.consumers.map((c) => `${c.queue}(prefetch ${c.prefetch})`).join(',')}`,
);

await client.close();
const after = await fetch(`http://127.0.0.1:${port}/health`);
console.log(`after close: GET /health -> ${after.status} ${await after.text()}`);
server.close();
