/**
 * When credentials given as a function expire and are refreshed: `expiresAt` (a Date or a number)
 * wins, else a JWT password's `exp`; anything else never expires; the refresh comes at 80% of the
 * lifetime, never sooner than 500 ms; what the function returns is checked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jwtExpiry, obtainCredentials, refreshDelay } from '../../src/connection/credentials.js';
import { CredentialsRefreshError } from '../../src/index.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

test('jwtExpiry reads a numeric exp and ignores everything else', () => {
  assert.equal(jwtExpiry(`${b64({ alg: 'RS256' })}.${b64({ exp: 1_700_000_000 })}.sig`), 1_700_000_000_000);
  for (const token of [
    'guest',
    'a.b',
    'a..c',
    `${b64({})}.${b64({ exp: '1700000000' })}.s`,
    `${b64({})}.${b64(['exp'])}.s`,
    `${b64({})}.not-json.s`,
    `${b64({})}.${b64(null)}.s`,
  ]) {
    assert.equal(jwtExpiry(token), undefined, token);
  }
});

test('expiresAt wins over the JWT; the refresh is at 80% of the lifetime, at least 500 ms away', async () => {
  const jwt = `${b64({})}.${b64({ exp: 2_000_000_000 })}.s`;
  const at = new Date(Date.now() + 10_000);
  const c = await obtainCredentials(() => ({ password: jwt, expiresAt: at }));
  assert.equal(c.expiresAt, at.getTime());
  assert.equal(refreshDelay({ ...c, obtainedAt: 0, expiresAt: 10_000 }, 0), 8000);
  assert.equal(refreshDelay({ ...c, obtainedAt: 0, expiresAt: -5 }, 0), 500, 'already expired: not a hot loop');
  assert.equal(refreshDelay({ ...c, expiresAt: undefined }), undefined);
  assert.equal((await obtainCredentials(async () => ({ password: jwt }))).expiresAt, 2_000_000_000_000);
  assert.equal((await obtainCredentials(() => ({ password: 'plain' }))).expiresAt, undefined);
});

test('what the function returns is checked, and its failure is typed', async () => {
  for (const bad of [
    () => null,
    () => ({ username: 'u' }),
    () => ({ password: 'p', username: 7 }),
    () => ({ password: 'p', expiresAt: Number.NaN }),
    () => {
      throw new Error('vault sealed');
    },
  ]) {
    await assert.rejects(obtainCredentials(bad as never), CredentialsRefreshError);
  }
});
