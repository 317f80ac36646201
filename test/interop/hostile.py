"""Publishes and reads messages with pika 1.2 or aioamqp 0.15, for test/interop/python.test.ts.

  hostile.py publish-pika    DIRECT_QUEUE VIA_QUEUE    publishes each message to both queues
  hostile.py publish-aioamqp DIRECT_QUEUE VIA_QUEUE
  hostile.py read-pika       QUEUE COUNT                prints the messages as JSON, one per line
  hostile.py read-aioamqp    QUEUE COUNT

A message is described with the Python type of every value (int, float, str, bytes, bytearray,
Decimal, datetime, dict, list, None), so "read back identical" means the same values AND types.
Run with /usr/bin/python3 (the Debian packages python3-pika and python3-aioamqp).
"""
import asyncio
import datetime
import decimal
import json
import os
import sys
import time

HOST = '127.0.0.1'
PORT = int(os.environ.get('AMQP_PORT', '5672'))
PROPERTY_NAMES = ['content_type', 'content_encoding', 'headers', 'delivery_mode', 'priority',
                  'correlation_id', 'reply_to', 'expiration', 'message_id', 'timestamp', 'type',
                  'user_id', 'app_id', 'cluster_id']
#: A header table far above the consumer's frame-max (the test's warren consumer asks for 4096):
#: RabbitMQ accepts it from pika (up to its own frame_max, 131072) and delivers it as ONE content
#: header frame, since a content header cannot be split.
HUGE = 100_000


def describe(v):
    if v is None:
        return ['None']
    if isinstance(v, bool):
        return ['bool', v]
    if isinstance(v, int):
        return ['int', str(v)]
    if isinstance(v, float):
        return ['float', v.hex()]
    if isinstance(v, str):
        return ['str', v]
    if isinstance(v, (bytes, bytearray)):
        return [type(v).__name__, v.hex()]
    if isinstance(v, decimal.Decimal):
        return ['Decimal', str(v)]
    if isinstance(v, datetime.datetime):
        return ['datetime', v.isoformat()]
    if isinstance(v, dict):
        return ['dict', [[k, describe(x)] for k, x in v.items()]]
    if isinstance(v, (list, tuple)):
        return ['list', [describe(x) for x in v]]
    return ['other', repr(v)]


def describe_message(props, body):
    out = {'body': body.hex()}
    for name in PROPERTY_NAMES:
        value = getattr(props, name, None)
        if value is not None:
            out[name] = describe(value)
    return out


WHEN = datetime.datetime(2024, 2, 29, 12, 34, 56)


def pika_messages():
    """(body, properties kwargs): what pika can express, at its edges."""
    return [
        (b'ts-2^60', dict(message_id='ts-2^60', timestamp=2 ** 60, headers={'n': 1})),
        (b'ts-1e13', dict(message_id='ts-1e13', timestamp=10 ** 13)),
        (b'ts-max', dict(message_id='ts-max', timestamp=2 ** 64 - 1, delivery_mode=2)),
        (b'huge-header', dict(message_id='huge-header', headers={'blob': 'h' * HUGE, 'n': 7})),
        (b'every-type', dict(
            message_id='every-type', content_type='application/json', content_encoding='identity',
            delivery_mode=2, priority=3, correlation_id='c-1', reply_to='r-1', expiration='600000',
            timestamp=1_700_000_000, type='t', app_id='pika', cluster_id='cl',
            headers={
                'int': 1, 'negative': -70000, 'big': 2 ** 40, 'min64': -(2 ** 63), 'max64': 2 ** 63 - 1,
                'text': 'ünïcødé ✓', 'empty': '', 'bytes': b'\x00\xff\x10', 'yes': True, 'no': False,
                'none': None, 'decimal': decimal.Decimal('12.345'), 'when': WHEN,
                'nested': {'a': [1, 'two', {'three': 3, 'deeper': {'x': None}}], 'b': []},
                'list': [1, 'a', True, None, b'\x01', [2 ** 40, [-1]], {'k': 'v'}],
            })),
        (b'', dict(message_id='empty-body')),
    ]


def aioamqp_messages():
    """What pamqp (under aioamqp) sends: floats as 'f' (float32), integers in the smallest width."""
    return [
        (b'numbers', dict(message_id='numbers', headers={
            'f3': 3.0, 'half': 0.5, 'neg': -2.25, 'zero': 0.0, 'third': 1.0 / 3.0,
            # pamqp encodes 'b' with an unsigned octet, so it cannot send a negative byte
            'b': 5, 'bmax': 127, 's': 300, 'sneg': -32768, 'u': 40000, 'I': 70000, 'Ineg': -70000,
            'i': 3_000_000_000, 'l': 2 ** 40, 'lneg': -(2 ** 40),
            'arr': [1, 3.0, 300, 40000, 'a', None, True],
            'tbl': {'x': 2.5, 'y': -200, 'z': {'deep': 7.0}},
        })),
        (b'misc', dict(message_id='misc', content_type='text/plain', delivery_mode=1, priority=9,
                       headers={'dec': decimal.Decimal('1.25'), 'raw': bytearray(b'\x01\x02'),
                                'when': WHEN, 'text': 'ok', 'yes': True})),
        (b'big', dict(message_id='big-header', headers={'blob': 'a' * (HUGE // 2), 'n': 1.5})),
    ]


def pika_connection():
    import pika
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=HOST, port=PORT, credentials=pika.PlainCredentials('guest', 'guest'),
        connection_attempts=3, retry_delay=0.5))


def publish_pika(queues):
    import pika
    conn = pika_connection()
    ch = conn.channel()
    ch.confirm_delivery()
    for body, props in pika_messages():
        for q in queues:
            ch.basic_publish('', q, body, pika.BasicProperties(**props))
    conn.close()


def read_pika(queue, count):
    conn = pika_connection()
    ch = conn.channel()
    got = []
    deadline = time.monotonic() + 20
    while len(got) < count and time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        got.append(describe_message(props, body))
    conn.close()
    for m in got:
        print(json.dumps(m))


async def aioamqp_channel():
    import aioamqp
    transport, protocol = await aioamqp.connect(host=HOST, port=PORT, login='guest', password='guest')
    return transport, protocol, await protocol.channel()


async def publish_aioamqp(queues):
    transport, protocol, ch = await aioamqp_channel()
    await ch.confirm_select()
    for body, props in aioamqp_messages():
        for q in queues:
            await ch.basic_publish(body, exchange_name='', routing_key=q, properties=props)
    await protocol.close()
    transport.close()


async def read_aioamqp(queue, count):
    transport, protocol, ch = await aioamqp_channel()
    got = []
    deadline = time.monotonic() + 20
    while len(got) < count and time.monotonic() < deadline:
        try:
            m = await ch.basic_get(queue, no_ack=True)
        except Exception as err:  # aioamqp raises EmptyQueue when there is nothing
            if type(err).__name__ != 'EmptyQueue':
                raise
            await asyncio.sleep(0.05)
            continue
        got.append(describe_message(m['properties'], m['message']))
    await protocol.close()
    transport.close()
    for m in got:
        print(json.dumps(m))


def main(argv):
    cmd = argv[1]
    if cmd == 'publish-pika':
        publish_pika(argv[2:])
    elif cmd == 'publish-aioamqp':
        asyncio.run(publish_aioamqp(argv[2:]))
    elif cmd == 'read-pika':
        read_pika(argv[2], int(argv[3]))
    elif cmd == 'read-aioamqp':
        asyncio.run(read_aioamqp(argv[2], int(argv[3])))
    elif cmd == 'count':
        print(json.dumps({'pika': len(pika_messages()), 'aioamqp': len(aioamqp_messages())}))
    else:
        raise SystemExit('unknown command ' + cmd)


if __name__ == '__main__':
    main(sys.argv)
