/**
 * Message bodies by content type (opt-in codecs): objects are encoded on publish by the codec of
 * their contentType (JSON by default, which also sets contentType), what arrives is decoded by the
 * codec of its contentType into `msg.value`, for consume<T>() and rpc<T>(); without codecs,
 * publishing an object still rejects, with a hint.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, describe, test } from 'node:test';
import { type Codec, CodecRegistry, type Decoded, InvalidArgumentError, type Message } from '../../src/index.js';
import { uniqueName } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { waitFor } from '../support/wait.js';

const clients = new Clients();
after(() => clients.closeAll());

const upper: Codec<string> = {
  contentType: 'text/x-upper',
  encode: (value) => value.toUpperCase(),
  decode: (body) => body.toString('utf8').toLowerCase(),
};

describe('codecs', () => {
  test('without codecs, an object body rejects before anything is sent, saying how to enable codecs', async () => {
    const client = clients.make();
    await assert.rejects(
      client.publisher().publish('', uniqueName('nowhere'), { id: 1 }),
      (err: unknown) => err instanceof InvalidArgumentError && /createClient\(\{ codecs/.test(err.message),
    );
  });

  test('JSON by default and a user codec by contentType, on the wire and back in msg.value', async () => {
    const client = clients.make({ codecs: new CodecRegistry([upper]) });
    const queue = uniqueName('codecs');
    await client.declareQueue(queue, { exclusive: true });
    const publisher = client.publisher();
    await publisher.publish('', queue, { id: 42, tags: ['a'] });
    await publisher.publish('', queue, 'plain string stays as it is');
    await publisher.publish('', queue, Object.assign(new String('shout'), {}), { contentType: 'text/x-upper' });
    const got: Message[] = [];
    const values: unknown[] = [];
    const sub = client.consume<{ id: number }>(queue, async (msg) => {
      got.push(msg);
      values.push(msg.properties.contentType === undefined ? undefined : msg.value);
    });
    await waitFor(() => got.length === 3, { what: 'three deliveries' });
    await sub.cancel();
    // On the wire: what other clients see.
    assert.equal(got[0]!.properties.contentType, 'application/json');
    assert.equal(got[0]!.body.toString(), '{"id":42,"tags":["a"]}');
    assert.equal(got[1]!.body.toString(), 'plain string stays as it is');
    assert.equal(got[2]!.body.toString(), 'SHOUT');
    assert.deepEqual(values, [{ id: 42, tags: ['a'] }, undefined, 'shout']);
    assert.deepEqual(got[0]!.json(), { id: 42, tags: ['a'] }, 'msg.json() as before');
  });

  test('a body its codec rejects fails the handler (handlerError), like any handler failure', async () => {
    const client = clients.make({ codecs: new CodecRegistry() });
    const queue = uniqueName('codecs-bad');
    await client.declareQueue(queue, { exclusive: true });
    await client.publisher().publish('', queue, 'not json', { contentType: 'application/json' });
    const errors: unknown[] = [];
    const sub = client.consume<number>(
      queue,
      async (msg) => {
        msg.value.toFixed();
      },
      { retry: false },
    );
    sub.on('handlerError', (err) => errors.push(err));
    await waitFor(() => errors.length >= 1, { what: 'the handler error' });
    await sub.cancel();
    assert.ok(errors[0] instanceof SyntaxError);
  });

  test('rpc<T>(): an object request is encoded, the reply decoded into value', async () => {
    const client = clients.make({ codecs: new CodecRegistry() });
    const queue = uniqueName('codecs-rpc');
    await client.declareQueue(queue, { exclusive: true });
    const server = client.rpcServer(queue, (req) => {
      const [a, b] = req.json<[number, number]>();
      return { body: JSON.stringify({ sum: a + b }), properties: { contentType: 'application/json' } };
    });
    await server.ready();
    const reply: Decoded<{ sum: number }> = await client.rpc<{ sum: number }>(queue, [2, 3], { timeout: 5000 });
    assert.equal(reply.value.sum, 5);
    assert.equal(reply.value, reply.value, 'decoded once');
    // What the message carries for its value stays out of logs and JSON.
    assert.ok(!inspect(reply).includes('warren.decode'), inspect(reply));
    assert.ok(!Object.keys(reply).includes('value'));
    await server.cancel();
  });

  test('rpc() without codecs: value says how to get one', async () => {
    const client = clients.make();
    const queue = uniqueName('codecs-rpc-plain');
    await client.declareQueue(queue, { exclusive: true });
    const server = client.rpcServer(queue, () => '{"ok":true}');
    await server.ready();
    const reply = await client.rpc(queue, 'x', { timeout: 5000 });
    assert.equal(reply.body.toString(), '{"ok":true}');
    assert.throws(() => reply.value, /msg\.value needs codecs/);
    await server.cancel();
  });

  test('the registry refuses codecs without contentType or functions, and unknown types', () => {
    const codecs = new CodecRegistry();
    assert.throws(() => codecs.register({ contentType: '', encode: String, decode: String }), InvalidArgumentError);
    assert.throws(() => codecs.encode({}, { contentType: 'application/x-unknown' }), /no codec for content type/);
    assert.equal(codecs.get('application/json; charset=utf-8')?.contentType, 'application/json');
  });
});
