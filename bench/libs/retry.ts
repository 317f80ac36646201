// For libraries whose reconnect support brings the connection back but rejects the publishes a cut caught
// (amqp-connection-manager, @cloudamqp/amqp-client's AMQPSession): their users publish again, and so does this.

const RETRY_PAUSE_MS = 10;

/**
 * Runs `attempt` until it resolves, pausing briefly between tries so a refused reconnect is not spun on; gives up
 * with the last error once `closed()` says the publisher was closed (the scenario's budget bounds the rest).
 */
export async function untilConfirmed(attempt: () => Promise<unknown>, closed: () => boolean): Promise<void> {
  for (;;) {
    try {
      await attempt();
      return;
    } catch (err) {
      if (closed()) throw err;
      await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
    }
  }
}
