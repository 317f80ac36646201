/**
 * Credentials that change (OAuth 2 access tokens, short-lived passwords from a vault): obtaining
 * them on every connect, reading when they expire, and when to refresh them on a live connection.
 *
 * @module
 */
import { CredentialsRefreshError } from '../errors.js';

/**
 * What a credentials function returns.
 *
 * @example
 * ```ts
 * const credentials = async (): Promise<Credentials> => {
 *   const { access_token, expires_in } = await fetchToken();
 *   return { username: 'svc', password: access_token, expiresAt: Date.now() + expires_in * 1000 };
 * };
 * ```
 */
export interface Credentials {
  /** The user name; the connection's `username` when absent (RabbitMQ's OAuth 2 backend ignores it). */
  username?: string;
  /** The password or token. */
  password: string;
  /**
   * When the secret stops being valid (a `Date` or ms since the epoch). When absent and the
   * password is a JWT, its `exp` claim is used; with neither, the secret is never refreshed on a
   * live connection (only on the next connect).
   */
  expiresAt?: Date | number;
}

/** A function giving the current credentials, called on every connect and before each expiry. */
export type CredentialsProvider = () => Credentials | Promise<Credentials>;

/** Credentials as obtained, with their expiry as ms since the epoch (if known). */
export interface ObtainedCredentials {
  username: string | undefined;
  password: string;
  expiresAt: number | undefined;
  obtainedAt: number;
}

/** Refresh this far into a secret's lifetime: late enough not to churn, early enough to retry. */
const REFRESH_AT_FRACTION = 0.8;
/** Never refresh more often than this, even for a secret that is already expired. */
const MIN_REFRESH_DELAY_MS = 500;

/**
 * Calls the provider and checks what it returned. Throws `CredentialsRefreshError` (whose message
 * never holds the secret) when it throws or returns something unusable.
 */
export async function obtainCredentials(provider: CredentialsProvider): Promise<ObtainedCredentials> {
  let given: Credentials;
  try {
    given = await provider();
  } catch (err) {
    throw new CredentialsRefreshError(
      `the credentials function failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (typeof given !== 'object' || given === null || typeof given.password !== 'string') {
    throw new CredentialsRefreshError('the credentials function must return { password, username?, expiresAt? }');
  }
  if (given.username !== undefined && typeof given.username !== 'string') {
    throw new CredentialsRefreshError('the username returned by the credentials function must be a string');
  }
  const expiresAt =
    given.expiresAt instanceof Date
      ? given.expiresAt.getTime()
      : typeof given.expiresAt === 'number'
        ? given.expiresAt
        : jwtExpiry(given.password);
  if (expiresAt !== undefined && !Number.isFinite(expiresAt)) {
    throw new CredentialsRefreshError('expiresAt returned by the credentials function is not a valid time');
  }
  return { username: given.username, password: given.password, expiresAt, obtainedAt: Date.now() };
}

/**
 * The `exp` claim (seconds since the epoch) of a JWT, as ms since the epoch; `undefined` for
 * anything that is not a JWT with a numeric `exp`. The signature is not checked: that is the
 * broker's job; this only says when to ask for a new one.
 */
export function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined || parts[1] === '') return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (typeof claims !== 'object' || claims === null) return undefined;
    const exp = (claims as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Milliseconds from now until credentials obtained as `c` should be refreshed; undefined: never. */
export function refreshDelay(c: ObtainedCredentials, now = Date.now()): number | undefined {
  if (c.expiresAt === undefined) return undefined;
  const at = c.obtainedAt + (c.expiresAt - c.obtainedAt) * REFRESH_AT_FRACTION;
  return Math.min(2 ** 31 - 1, Math.max(MIN_REFRESH_DELAY_MS, at - now));
}
