/**
 * The client properties sent in connection.start-ok: who we are and which RabbitMQ extensions we
 * understand (the broker only uses those we announce).
 *
 * @module
 */
import type { FieldTable } from '../protocol/field-values.js';
import { VERSION } from '../version.js';
import type { ResolvedConnectionOptions } from './options.js';

export function clientProperties(o: ResolvedConnectionOptions): FieldTable {
  const props: FieldTable = {
    product: 'warren',
    version: VERSION,
    platform: `Node.js ${process.version}`,
    information: 'https://www.npmjs.com/package/warren',
    capabilities: {
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    },
    ...o.clientProperties,
  };
  if (o.name !== undefined) props.connection_name = o.name;
  return props;
}
