/**
 * What an end of the connection means, decided from the state it happened in: a socket that
 * drops while authenticating is refused credentials, a close while opening the vhost a refused
 * vhost, a malformed first frame a server that does not speak AMQP 0-9-1. Never from message text.
 *
 * @module
 */
import {
  type AMQPError,
  AuthenticationError,
  ConnectionClosedByServer,
  FrameError,
  HandshakeError,
  SocketError,
} from '../errors.js';
import { PROTOCOL_HEADER, REPLY_CODES } from '../protocol/generated/constants.js';
import type { MethodArgsByName } from '../protocol/generated/methods.js';
import type { ConnectionState } from './connection-state.js';

/** Who the connection was for, to name in messages. */
export interface ConnectionParty {
  readonly username: string;
  readonly vhost: string;
  readonly host: string;
  readonly port: number;
}

function refusedCredentials(party: ConnectionParty, detail: string, replyCode?: number): AuthenticationError {
  return new AuthenticationError(
    `the broker refused the credentials of user '${party.username}' (${detail})`,
    replyCode === undefined ? undefined : { replyCode },
  );
}

/** Turns a server's connection.close into the right error for the state the connection was in. */
export function serverCloseError(
  state: ConnectionState,
  args: MethodArgsByName['connection.close'],
  method: string | undefined,
  party: ConnectionParty,
): AMQPError {
  const text = `${args.replyCode} ${args.replyText}`;
  switch (state) {
    case 'open':
    case 'closing':
    case 'closed':
      return new ConnectionClosedByServer(args, method);
    case 'authenticating':
      return refusedCredentials(party, text, args.replyCode);
    case 'opening-vhost':
      return new HandshakeError(
        `the broker refused to open virtual host '${party.vhost}' for user '${party.username}' (${text}); check that it exists and the user has permissions on it`,
        { reason: 'vhost', replyCode: args.replyCode },
      );
    case 'awaiting-start':
    case 'tuning':
      if (args.replyCode === REPLY_CODES.ACCESS_REFUSED) return refusedCredentials(party, text, args.replyCode);
      return new HandshakeError(`the broker closed the connection during the handshake (${text})`, {
        reason: 'closed',
        replyCode: args.replyCode,
      });
  }
}

/**
 * What a failure in `state` is reported as: `undefined` for the socket ending while we close
 * (the clean end of our close), a handshake diagnosis where the state makes one, else `error`.
 */
export function failureReason(
  state: ConnectionState,
  error: AMQPError | undefined,
  party: ConnectionParty,
): AMQPError | undefined {
  if (error instanceof SocketError) {
    if (state === 'closing') return undefined;
    if (state === 'authenticating') {
      // RabbitMQ without authentication_failure_close drops the socket on bad credentials.
      return new AuthenticationError(
        `the broker closed the connection after authentication; it probably refused the credentials of user '${party.username}'`,
        { cause: error },
      );
    }
  } else if (error instanceof FrameError && state === 'awaiting-start') {
    // Whatever answered is not an AMQP 0-9-1 broker (another AMQP version's header, HTTP, TLS…):
    // say so, and send it nothing.
    return new HandshakeError(
      error.frameType === PROTOCOL_HEADER[0]
        ? 'the server does not speak AMQP 0-9-1 (it answered with another protocol header)'
        : `the server at ${party.host}:${party.port} does not speak AMQP 0-9-1 (${error.message})`,
      { cause: error },
    );
  }
  return error;
}
