/**
 * amqplib's `credentials` helpers: SASL mechanisms for the `credentials` socket option.
 *
 * @module
 */
import type { Credentials } from './model.js';

/**
 * Credentials for `connect(url, { credentials })`, as amqplib's `credentials` export.
 *
 * @example
 * ```ts
 * import amqp, { credentials } from 'warren/amqplib';
 * await amqp.connect('amqps://broker', { credentials: credentials.external(), cert, key });
 * ```
 */
export const credentials = {
  /** SASL PLAIN with a user name and password. */
  plain(username: string, password: string): Credentials & { username: string; password: string } {
    return {
      mechanism: 'PLAIN',
      response: () => Buffer.from(`\0${username}\0${password}`),
      username,
      password,
    };
  },
  /** RabbitMQ's AMQPLAIN with a user name and password. */
  amqplain(username: string, password: string): Credentials & { username: string; password: string } {
    return {
      mechanism: 'AMQPLAIN',
      // warren encodes the AMQPLAIN table itself from username and password.
      response: () => Buffer.alloc(0),
      username,
      password,
    };
  },
  /** SASL EXTERNAL: the broker identifies the client by its TLS certificate. */
  external(): Credentials {
    return { mechanism: 'EXTERNAL', response: () => Buffer.alloc(0) };
  },
};
