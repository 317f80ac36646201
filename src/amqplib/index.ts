/**
 * `warren/amqplib`: amqplib's promise API on warren. Change the import and keep your code:
 *
 * ```ts
 * // import amqp from 'amqplib';
 * import amqp from 'warren/amqplib';
 * ```
 *
 * Add `{ recover: true }` as the second argument of `connect` to get automatic reconnection with
 * channels, topology and consumers restored. See docs/migrating-from-amqplib.md for every difference.
 *
 * @example
 * ```ts
 * import amqp from 'warren/amqplib';
 * const conn = await amqp.connect('amqp://localhost');
 * const ch = await conn.createChannel();
 * await ch.assertQueue('hello', { durable: false });
 * ch.sendToQueue('hello', Buffer.from('Hello World!'));
 * await ch.close();
 * await conn.close();
 * ```
 * @module
 */
import { credentials } from './credentials.js';
import { BrokerError, IllegalOperationError } from './errors.js';
import { connect } from './model.js';

export { Channel, ConfirmChannel } from './channel.js';
export type { ConfirmCallback, ConnectionFacade as Connection } from './channel.js';
export { credentials } from './credentials.js';
export { BrokerError, IllegalOperationError } from './errors.js';
export { ChannelModel, connect } from './model.js';
export type { Credentials, RecoverOptions, SocketOptions } from './model.js';
export type {
  CommonMessageFields,
  ConsumeMessage,
  ConsumeMessageFields,
  GetMessage,
  GetMessageFields,
  HeaderValue,
  Message,
  MessageFields,
  MessageProperties,
  MessagePropertyHeaders,
  Options,
  Replies,
  ServerProperties,
} from './types.js';

/** The module as a default export too, for `import amqp from 'warren/amqplib'`. */
const amqp = { connect, credentials, IllegalOperationError, BrokerError };
export default amqp;
