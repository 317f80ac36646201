/**
 * Opens the byte stream a connection runs over: plain TCP or TLS, with a time limit.
 *
 * @module
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { AbortError, SocketError, TimeoutError } from '../errors.js';

/** Where and how to open the socket. */
export interface SocketOptions {
  host: string;
  port: number;
  /** `true` for TLS with defaults, or options passed to `tls.connect` (verification stays on unless you turn it off). */
  tls?: boolean | tls.ConnectionOptions | undefined;
  /** Milliseconds to wait for the TCP (and TLS) connection. */
  timeout: number;
  signal?: AbortSignal | undefined;
}

/** Resolves with a connected socket, or rejects with `SocketError`, `TimeoutError` or `AbortError`. */
export function openSocket(options: SocketOptions): Promise<net.Socket> {
  const { host, port, timeout, signal } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError('connect aborted', { cause: signal.reason }));
      return;
    }
    let socket: net.Socket;
    const useTls = options.tls !== undefined && options.tls !== false;
    const where = `${host}:${port}`;
    const onReady = () => {
      cleanup();
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      resolve(socket);
    };
    const onError = (err: Error) => {
      cleanup();
      socket.destroy();
      const tlsHint =
        useTls && /certificate|self.signed|CERT|verify/i.test(err.message)
          ? ' (TLS verification failed: pass the broker CA as tls.ca)'
          : '';
      reject(new SocketError(`could not connect to ${where}: ${err.message}${tlsHint}`, { cause: err }));
    };
    const onTimeout = () => {
      cleanup();
      socket.destroy();
      reject(new TimeoutError(`could not connect to ${where} within ${timeout} ms`));
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(new AbortError('connect aborted', { cause: signal?.reason }));
    };
    const timer = setTimeout(onTimeout, timeout);
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (useTls) {
      const extra = typeof options.tls === 'object' ? options.tls : {};
      const servername = extra.servername ?? (net.isIP(host) === 0 ? host : undefined);
      socket = tls.connect({ ...extra, host, port, ...(servername === undefined ? {} : { servername }) }, onReady);
    } else {
      socket = net.connect({ host, port }, onReady);
    }
    socket.once('error', onError);
  });
}
