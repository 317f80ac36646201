/**
 * Credentials given as a function, seen from the broker's side of the wire: asked for on every
 * connect (the start-ok response carries the fresh secret), refreshed before expiry through
 * connection.update-secret (the expiry from `expiresAt` or a JWT's `exp`), a refusal (the broker
 * closes the connection in answer) reported as `CredentialsRefreshError`, and a function that
 * throws on refresh reported without killing the connection.
 */
import assert from 'node:assert/strict';
import { CredentialsRefreshError, connect, TimeoutError } from '../../src/index.js';
import { jwtExpiry } from '../../src/connection/credentials.js';
import { assertInstance, fakeTest, open, rejection, serve } from './helpers.js';
import { within } from '../support/wait.js';

function plainPassword(response: string | Buffer): string {
  return response.toString().split('\0')[2] ?? '';
}

/** An unsigned JWT-shaped token expiring `inMs` from now (the client never checks signatures). */
function token(id: number, inMs: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none' })}.${part({ sub: 'svc', jti: id, exp: (Date.now() + inMs) / 1000 })}.sig`;
}

fakeTest('the function is called on every connect; a JWT is refreshed before its exp via update-secret', async () => {
  const seen: string[] = [];
  const server = await serve(async (s) => {
    const { startOk } = await s.handshake({ heartbeat: 0 });
    seen.push(plainPassword(startOk.response));
    if (seen.length === 1) {
      const update = await s.recvMethod('connection.update-secret', { timeoutMs: 3000 });
      seen.push(update.args.newSecret.toString());
      s.send(0, 'connection.update-secret-ok', {});
    }
    await s.expectClose();
  });
  let issued = 0;
  const credentials = async () => ({ username: 'svc', password: token(++issued, 1000) });
  const conn = await open(server, { credentials });
  const refreshed = new Promise((resolve) => conn.once('credentialsRefreshed', resolve));
  await within(refreshed, 2500, 'the refresh');
  assert.equal(issued, 2);
  assert.equal(JSON.parse(Buffer.from(seen[0]!.split('.')[1]!, 'base64url').toString()).jti, 1);
  assert.notEqual(seen[1], seen[0], 'update-secret carried the new token');
  assert.equal(jwtExpiry(seen[1]!)! > jwtExpiry(seen[0]!)!, true);
  await conn.close();
  // A new connection asks again: never the token of the last one.
  const again = await open(server, { credentials });
  assert.equal(issued, 3);
  assert.ok(!seen.slice(0, 2).includes(seen[2]!));
  await again.close();
  await server.done({ connections: 2 });
});

fakeTest('a refresh the broker refuses closes the connection with CredentialsRefreshError', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    await s.recvMethod('connection.update-secret', { timeoutMs: 3000 });
    s.send(0, 'connection.close', {
      replyCode: 530,
      replyText: 'NOT_ALLOWED - new secret refused',
      classId: 10,
      methodId: 70,
    });
    await s.recvMethod('connection.close-ok');
  });
  let issued = 0;
  const conn = await open(server, {
    credentials: () => ({ password: `secret-${++issued}`, expiresAt: Date.now() + 700 }),
  });
  const reported = new Promise<unknown>((resolve) => conn.once('credentialsError', resolve));
  const reason = await within(conn.closed, 2500, 'the close');
  const err = assertInstance(reason, CredentialsRefreshError);
  assert.match(err.message, /refused the refreshed secret .*530/);
  assert.equal(await reported, err);
  assert.ok(!err.message.includes('secret-'), 'the secret is not in the message');
  await server.done();
});

fakeTest('a function that throws on refresh is reported; the connection lives; connect fails typed', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    await s.expectClose({ timeoutMs: 4000 });
  });
  let calls = 0;
  const conn = await open(server, {
    credentials: () => {
      if (++calls > 1) throw new Error('token endpoint down');
      return { password: 'first', expiresAt: Date.now() + 600 };
    },
  });
  const err = await within(
    new Promise<unknown>((resolve) => conn.once('credentialsError', resolve)),
    2000,
    'the credentialsError event',
  );
  assertInstance(err, CredentialsRefreshError);
  assert.match((err as Error).message, /credentials function failed: token endpoint down/);
  assert.equal(conn.isOpen, true);
  await conn.close();
  await server.done();
  const failing = await rejection(
    connect(server.url, {
      credentials: async () => {
        throw new Error('no token');
      },
    }),
  );
  assertInstance(failing, CredentialsRefreshError);
});

fakeTest('an update-secret the broker never answers closes the connection with TimeoutError', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    await s.recvMethod('connection.update-secret', { timeoutMs: 3000 });
    // No update-secret-ok: warren gives up on the connection.
    await s.recv({ timeoutMs: 3000 }).catch(() => undefined);
  });
  const conn = await open(server, {
    operationTimeout: 300,
    credentials: () => ({ password: 'p', expiresAt: Date.now() + 700 }),
  });
  const reported = new Promise<unknown>((resolve) => conn.once('credentialsError', resolve));
  const reason = await within(conn.closed, 3000, 'the close');
  assertInstance(reason, TimeoutError);
  assert.match((reason as Error).message, /update-secret within 300 ms/);
  assertInstance(await within(reported, 1000, 'the event'), CredentialsRefreshError);
  await server.done();
});
