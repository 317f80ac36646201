/**
 * Credentials that change, against RabbitMQ's own OAuth 2.0 backend (`rabbitmq_auth_backend_oauth2`)
 * on an extra node (warren-oauth, 127.0.0.1:5730) that verifies JWTs with an RSA key this test
 * generates; tokens are RS256 JWTs made with node:crypto and live a few seconds:
 *
 * - a token given once stops working when it expires; a connection with a credentials function
 *   outlives its tokens, refreshing each before its `exp` through connection.update-secret;
 * - a reconnect after the tokens expired asks the function again, so it logs in with a fresh token;
 * - a refreshed token the broker refuses is reported as `CredentialsRefreshError`.
 *
 * One node for the whole file; it runs with the cluster tests, one file at a time.
 */
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AuthenticationError,
  type Connection,
  CredentialsRefreshError,
  connect,
  createClient,
} from '../../src/index.js';
import { rejection } from '../support/broker.js';
import { type OAuthNode, startOAuthNode } from '../support/broker-nodes.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { within } from '../support/wait.js';

const KEY_ID = 'warren-key';
const signingKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const strangerKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
let node: OAuthNode;
let proxy: TcpProxy;
const opened: Connection[] = [];

before(async () => {
  node = await startOAuthNode({
    publicKeyPem: signingKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: KEY_ID,
  });
  proxy = await startProxy({ target: { host: '127.0.0.1', port: node.port } });
});

after(async () => {
  for (const c of opened) if (c.isOpen) await c.close({ timeout: 1000 });
  await proxy?.close();
  await node?.stop();
});

let minted = 0;

/** An RS256 JWT granting everything on every vhost, valid for `lifetimeMs` from now. */
function token(lifetimeMs: number, key: KeyObject = signingKeys.privateKey): string {
  const now = Date.now() / 1000;
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = part({ alg: 'RS256', typ: 'JWT', kid: KEY_ID });
  const claims = part({
    sub: 'warren-test',
    jti: `t${++minted}`,
    aud: ['rabbitmq'],
    scope: ['rabbitmq.configure:*/*', 'rabbitmq.write:*/*', 'rabbitmq.read:*/*'],
    iat: Math.floor(now),
    // Whole seconds: RabbitMQ 3.10 checks the expiry of an integer `exp` only.
    exp: Math.round(now + lifetimeMs / 1000),
  });
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key).toString('base64url');
  return `${header}.${claims}.${signature}`;
}

/** Declares (and deletes) a queue on a new channel: a new channel checks permissions afresh. */
async function canDeclare(conn: Connection): Promise<true | unknown> {
  try {
    const ch = await conn.openChannel({ timeout: 5000 });
    const { queue } = await ch.queueDeclare('', { exclusive: true, timeout: 5000 });
    await ch.queueDelete(queue);
    await ch.close();
    return true;
  } catch (err) {
    return err;
  }
}

test('a token given once stops working at its exp; a credentials function refreshes before it', {
  timeout: 30_000,
}, async () => {
  const LIFETIME = 3000;
  const fixed = await connect(node.url, { username: 'ignored', password: token(LIFETIME) });
  opened.push(fixed);
  const issued: string[] = [];
  const refreshing = await connect(node.url, {
    credentials: () => {
      issued.push(token(LIFETIME));
      return { username: 'ignored', password: issued.at(-1)! };
    },
  });
  opened.push(refreshing);
  let refreshes = 0;
  const problems: unknown[] = [];
  refreshing.on('credentialsRefreshed', () => refreshes++);
  refreshing.on('credentialsError', (err) => problems.push(err));
  assert.equal(await canDeclare(fixed), true);
  assert.equal(await canDeclare(refreshing), true);
  // Past the expiry of the first tokens (and of a second one, for the refreshing connection).
  await sleep(LIFETIME * 2 + 500);
  const expired = await canDeclare(fixed);
  assert.notEqual(expired, true, 'the connection whose token expired can no longer declare');
  assert.equal(await canDeclare(refreshing), true, 'the refreshed connection can');
  assert.equal(refreshing.isOpen, true);
  assert.ok(refreshes >= 2, `refreshed ${refreshes} times`);
  assert.deepEqual(problems, []);
  assert.equal(new Set(issued).size, issued.length);
  await refreshing.close();
});

test('a reconnect after the tokens expired logs in with a fresh one', { timeout: 30_000 }, async () => {
  const LIFETIME = 2000;
  const issuedAt: number[] = [];
  const client = createClient({
    urls: [`amqp://127.0.0.1:${proxy.port}`],
    backoff: { initialDelay: 50, maxDelay: 200 },
    credentials: async () => {
      issuedAt.push(Date.now());
      return { password: token(LIFETIME) };
    },
  });
  try {
    await client.ready({ timeout: 10_000 });
    const stale = token(LIFETIME);
    await proxy.refuse(true, 'unlisten');
    proxy.cutAll();
    const cutAt = Date.now();
    await sleep(LIFETIME + 500); // every token issued so far has expired
    assert.ok((await rejection(connect(node.url, { password: stale }))) instanceof AuthenticationError);
    await proxy.refuse(false);
    await client.declareQueue('', { exclusive: true, timeout: 10_000 });
    const fresh = issuedAt.filter((t) => t > cutAt + LIFETIME);
    assert.ok(fresh.length >= 1, `tokens issued at ${issuedAt.map((t) => t - cutAt)} ms from the cut`);
  } finally {
    await client.close({ timeout: 2000 });
    await proxy.refuse(false);
  }
});

test('a refreshed token the broker refuses is reported as CredentialsRefreshError', { timeout: 30_000 }, async () => {
  let calls = 0;
  const conn = await connect(node.url, {
    credentials: () => ({
      // The refresh is signed with a key the node does not know.
      password: ++calls === 1 ? token(1500) : token(60_000, strangerKeys.privateKey),
    }),
  });
  opened.push(conn);
  const reported = within(
    new Promise<unknown>((resolve) => conn.once('credentialsError', resolve)),
    10_000,
    'the credentialsError event',
  );
  const err = await reported;
  assert.ok(err instanceof CredentialsRefreshError, `expected CredentialsRefreshError, got ${String(err)}`);
  assert.equal(calls, 2);
});
