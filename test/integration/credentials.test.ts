/**
 * A user, password and vhost that need percent-encoding in a URL, created for this file with
 * rabbitmqctl (and deleted after it): PLAIN and AMQPLAIN both authenticate with the decoded values.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AuthenticationError, connect } from '../../src/index.js';
import { AMQP_URL, rabbitmqctl, rabbitmqctlWithInput, rejection, uniqueName, withChannel } from '../support/broker.js';
import { waitFor } from '../support/wait.js';

const base = new URL(AMQP_URL);
const HOST = base.hostname;
const PORT = Number(base.port || 5672);

describe('a user and vhost with characters that need percent-encoding', () => {
  const user = `${uniqueName('u')}@x`;
  const password = 'p@ss:w/rd%&?#é';
  const vhost = `${uniqueName('v')}/sub`;
  const url = `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${HOST}:${PORT}/${encodeURIComponent(vhost)}`;

  before(async () => {
    // One import_definitions call instead of add_user, add_vhost and set_permissions: every rabbitmqctl
    // run boots an Erlang VM (1-3 s). The import finishes asynchronously, so wait until the user can log in.
    const definitions = {
      users: [{ name: user, password, tags: '' }],
      vhosts: [{ name: vhost }],
      permissions: [{ user, vhost, configure: '.*', write: '.*', read: '.*' }],
    };
    await rabbitmqctlWithInput(JSON.stringify(definitions), 'import_definitions'); // no path: stdin
    await waitFor(
      async () => {
        try {
          await (await connect(url)).close();
          return true;
        } catch {
          return false;
        }
      },
      { timeout: 15_000, what: 'the imported user and vhost' },
    );
  });

  after(async () => {
    await Promise.allSettled([rabbitmqctl('delete_user', user), rabbitmqctl('delete_vhost', vhost)]);
  });

  for (const mechanism of ['PLAIN', 'AMQPLAIN'] as const) {
    test(`${mechanism}: the decoded credentials and vhost are accepted`, async () => {
      const conn = await connect(url, { mechanism });
      try {
        assert.equal(conn.endpoint.vhost, vhost);
        await withChannel(async (ch) => {
          // An exclusive queue proves we are really inside the vhost with permissions.
          const q = await ch.queueDeclare('', { exclusive: true });
          assert.match(q.queue, /^amq\.gen-/);
        }, conn);
      } finally {
        await conn.close();
      }
    });
  }

  test('the same user with a wrong password is refused', async () => {
    const err = await rejection(connect(`amqp://${encodeURIComponent(user)}:nope@${HOST}:${PORT}/x`));
    assert.ok(err instanceof AuthenticationError, String(err));
  });
});
