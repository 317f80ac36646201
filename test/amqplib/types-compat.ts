/**
 * Compile-time check (part of `tsc -p tsconfig.test.json`): warren/amqplib's objects fit the
 * interfaces of @types/amqplib, so code typed against those compiles unchanged with the import switched.
 * (compat.test.ts checks the same against amqplib's own index.d.ts.)
 */
import type * as Types from '../../node_modules/@types/amqplib/index.js';
import type * as TypesCallback from '../../node_modules/@types/amqplib/callback_api.js';
import * as warren from '../../src/amqplib/index.js';
import * as warrenCallback from '../../src/amqplib/callback-api.js';

export async function typedAgainstTypesAmqplib(): Promise<void> {
  const connect: (
    url: string | Types.Options.Connect,
    socketOptions?: warren.SocketOptions,
  ) => Promise<Types.ChannelModel> = warren.connect;
  const model: Types.ChannelModel = await connect('amqp://localhost');
  const channel: Types.Channel = await model.createChannel();
  const confirm: Types.ConfirmChannel = await model.createConfirmChannel();
  const q: Types.Replies.AssertQueue = await channel.assertQueue('', { exclusive: true, messageTtl: 1000 });
  await channel.consume(q.queue, (msg: Types.ConsumeMessage | null) => {
    if (msg !== null) channel.ack(msg);
  });
  const got: Types.GetMessage | false = await channel.get(q.queue);
  if (got !== false) channel.nack(got, false, true);
  confirm.publish('', q.queue, Buffer.from('x'), { persistent: true }, (err: unknown, ok: Types.Replies.Empty) => {
    void err;
    void ok;
  });
  await confirm.waitForConfirms();
  const creds: typeof Types.credentials = warren.credentials;
  void creds;
  const callbackConnect: typeof TypesCallback.connect = warrenCallback.connect;
  void callbackConnect;
  await model.close();
}
