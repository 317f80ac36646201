/**
 * SASL responses for connection.start-ok.
 *
 * @module
 */
import { HandshakeError } from '../errors.js';
import { Writer } from '../protocol/writer.js';
import type { AuthMechanism } from './options.js';

/** The start-ok response bytes for a mechanism. */
export function saslResponse(mechanism: AuthMechanism, username: string, password: string): Buffer {
  switch (mechanism) {
    case 'PLAIN':
      return Buffer.from(`\0${username}\0${password}`, 'utf8');
    case 'AMQPLAIN': {
      // A field table without its leading length, as RabbitMQ's rabbit_auth_mechanism_amqplain reads it.
      const w = new Writer(256);
      w.table({ LOGIN: username, PASSWORD: password });
      return Buffer.from(w.buf.subarray(4, w.pos));
    }
    case 'EXTERNAL':
      return Buffer.alloc(0);
  }
}

/** Checks the broker offers the mechanism we want; the error names what it does offer. */
export function checkMechanism(wanted: AuthMechanism, offered: string): void {
  const list = offered.split(/\s+/).filter(Boolean);
  if (!list.includes(wanted)) {
    throw new HandshakeError(
      `the broker does not offer SASL mechanism ${wanted} (it offers ${list.join(', ') || 'none'})` +
        (wanted === 'EXTERNAL' ? '; enable the rabbitmq_auth_mechanism_ssl plugin' : ''),
    );
  }
}
