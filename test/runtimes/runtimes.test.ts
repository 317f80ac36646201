/**
 * The runtime matrix: the public API (connect, publish/confirm, consume/ack, RPC, reconnect through a
 * cut, TLS) on Node 20, 22, 24 and 26, Bun and Deno. The runtimes come from npm packages installed into
 * .cache/runtimes (scripts/install-runtimes.mjs); warren is installed into a scratch project from a git
 * URL (a bare repository of a clean copy of this tree), and test/runtimes/public-api.mjs runs there,
 * importing `warren` as a user's program does. For the cut, a TCP proxy in this process; for TLS, a
 * node:tls proxy with a self-signed certificate made here with openssl, in front of 127.0.0.1:5672.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { bareRepository, installInto, root } from '../support/package.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';

const run = promisify(execFile);
const brokerUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(brokerUrl.replace(/^amqp/, 'http'));
const CHECKS = [
  'errors and version',
  'connect, publish, get (low level)',
  'publish with confirms, consume and ack',
  'rpc',
  'reconnect through a cut',
  'tls',
];
const supported = process.platform === 'linux' && process.arch === 'x64';

/**
 * How each runtime runs a plain ES module with its settings file. Deno gets only network access and
 * reading files (the settings and the CA certificate): warren needs no env or sys permission.
 */
const RUNTIMES: Record<string, (bin: string, args: string[]) => [string, string[]]> = {
  node20: (bin, a) => [bin, a],
  node22: (bin, a) => [bin, a],
  node24: (bin, a) => [bin, a],
  node26: (bin, a) => [bin, a],
  bun: (bin, a) => [bin, a],
  deno: (bin, a) => [bin, ['run', '--no-prompt', '--allow-net', '--allow-read', ...a]],
};

let scratch: string;
let app: string;
let bins: Record<string, string>;
let proxy: TcpProxy;
let control: Server;
let tlsProxy: tls.Server;
let env: Record<string, string>;

before(async () => {
  if (!supported) return;
  scratch = mkdtempSync(join(tmpdir(), 'warren-runtimes-'));
  const installing = run(process.execPath, ['scripts/install-runtimes.mjs'], { cwd: root, timeout: 600_000 });
  app = join(scratch, 'app');
  await installInto(app, await bareRepository(scratch));
  copyFileSync(join(root, 'test/runtimes/public-api.mjs'), join(app, 'public-api.mjs'));
  bins = JSON.parse((await installing).stdout) as Record<string, string>;

  proxy = await startProxy({ target: { host: broker.hostname, port: Number(broker.port || 5672) } });
  control = createServer((req, res) => {
    if (req.url === '/cut') proxy.cutAll();
    res.writeHead(req.url === '/cut' ? 200 : 404).end();
  });
  await new Promise<void>((done) => control.listen(0, '127.0.0.1', done));

  const key = join(scratch, 'key.pem');
  const cert = join(scratch, 'cert.pem');
  const subject = ['-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'];
  const certificate = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', ...subject];
  await run('openssl', [...certificate, '-keyout', key, '-out', cert], { timeout: 30_000 });
  tlsProxy = tls.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (client) => {
    const upstream = net.connect(Number(broker.port || 5672), broker.hostname);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((done) => tlsProxy.listen(0, '127.0.0.1', done));
  const auth = `${broker.username || 'guest'}:${broker.password || 'guest'}`;
  env = {
    WARREN_URL: brokerUrl,
    WARREN_PROXY_URL: proxy.url(broker.username || 'guest', broker.password || 'guest'),
    WARREN_CONTROL_URL: `http://127.0.0.1:${(control.address() as net.AddressInfo).port}`,
    WARREN_TLS_URL: `amqps://${auth}@localhost:${(tlsProxy.address() as net.AddressInfo).port}`,
    WARREN_TLS_CA: cert,
  };
  writeFileSync(join(app, 'settings.json'), JSON.stringify(env));
});

after(async () => {
  await proxy?.close();
  control?.close();
  tlsProxy?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function runIn(runtime: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, args] = RUNTIMES[runtime]!(bins[runtime]!, ['public-api.mjs', 'settings.json']);
  return new Promise((done) => {
    const child = spawn(cmd, args, {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? scratch, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

describe('the public API on every runtime of the matrix', { skip: !supported && 'Linux x64 only' }, () => {
  for (const runtime of Object.keys(RUNTIMES)) {
    test(runtime, async () => {
      const { code, stdout, stderr } = await runIn(runtime);
      const results = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { check: string; ok: boolean; note?: string; error?: string });
      const context = `stdout:\n${stdout}\nstderr:\n${stderr}`;
      assert.deepEqual(
        results.map((r) => r.check),
        CHECKS,
        `every check ran; ${context}`,
      );
      for (const r of results) {
        assert.ok(r.ok, `${runtime}: ${r.check}: ${r.error}\n${context}`);
        assert.equal(r.note, undefined, `${runtime}: ${r.check} ran (not skipped)`);
      }
      assert.equal(code, 0, context);
    });
  }
});
