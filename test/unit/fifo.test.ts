/**
 * The client's FIFO: order kept through pushes, shifts, compaction, prepends and filtering; consumed
 * slots let go of their items; a long run of pushes and shifts stays linear.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Fifo } from '../../src/client/fifo.js';

function contents<T>(q: Fifo<T>): T[] {
  const out: T[] = [];
  for (let i = 0; i < q.length; i++) out.push(q.at(i));
  return out;
}

test('first in, first out; empty gives undefined', () => {
  const q = new Fifo<number>();
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
  assert.equal(q.peek(), undefined);
  q.push(1);
  q.push(2);
  q.push(3);
  assert.equal(q.length, 3);
  assert.equal(q.peek(), 1);
  assert.equal(q.shift(), 1);
  assert.equal(q.at(0), 2);
  assert.equal(q.shift(), 2);
  q.push(4);
  assert.deepEqual(contents(q), [3, 4]);
  assert.equal(q.shift(), 3);
  assert.equal(q.shift(), 4);
  assert.equal(q.shift(), undefined);
  assert.equal(q.length, 0);
});

test('order holds across compaction of a long consumed prefix', () => {
  const q = new Fifo<number>();
  let next = 0;
  let expected = 0;
  // Pushes outrun shifts, so the head passes the compaction threshold with items still behind it.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 300; i++) q.push(next++);
    for (let i = 0; i < 200; i++) assert.equal(q.shift(), expected++);
    assert.equal(q.length, next - expected);
    assert.equal(q.peek(), expected);
  }
  while (q.length > 0) assert.equal(q.shift(), expected++);
  assert.equal(expected, next);
});

test('prepend puts items in front, in their order, after shifts too', () => {
  const q = new Fifo<string>();
  q.prepend([]);
  assert.equal(q.length, 0);
  for (const s of ['a', 'b', 'c', 'd']) q.push(s);
  q.shift();
  q.prepend(['x', 'y']);
  assert.deepEqual(contents(q), ['x', 'y', 'b', 'c', 'd']);
  q.push('e');
  assert.equal(q.shift(), 'x');
  assert.deepEqual(contents(q), ['y', 'b', 'c', 'd', 'e']);
});

test('retain keeps what passes, in order', () => {
  const q = new Fifo<number>();
  for (let i = 0; i < 10; i++) q.push(i);
  q.shift();
  q.shift();
  q.retain((n) => n % 2 === 0);
  assert.deepEqual(contents(q), [2, 4, 6, 8]);
  q.push(10);
  assert.equal(q.shift(), 2);
  assert.deepEqual(contents(q), [4, 6, 8, 10]);
});

test('takeAll empties the queue and returns what is left, oldest first; clear empties it', () => {
  const q = new Fifo<number>();
  for (let i = 0; i < 5; i++) q.push(i);
  q.shift();
  assert.deepEqual(q.takeAll(), [1, 2, 3, 4]);
  assert.equal(q.length, 0);
  assert.deepEqual(q.takeAll(), []);
  q.push(7);
  q.clear();
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
  q.push(8);
  assert.equal(q.shift(), 8);
});

test('a shifted item is not held by the queue', async () => {
  const q = new Fifo<object>();
  let item: object | undefined = {};
  const ref = new WeakRef(item);
  q.push(item);
  q.push({}); // keeps the queue from resetting its array, so only the cleared slot lets go
  q.shift();
  item = undefined;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return; // run with --expose-gc to check
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.equal(ref.deref(), undefined);
});

test('a million pushes and shifts, interleaved or in bulk, stay linear', () => {
  const q = new Fifo<number>();
  const started = performance.now();
  for (let i = 0; i < 1_000_000; i++) {
    q.push(i);
    if (i % 3 !== 0) q.shift();
  }
  while (q.length > 0) q.shift();
  for (let i = 0; i < 1_000_000; i++) q.push(i);
  for (let i = 0; i < 1_000_000; i++) assert.equal(q.shift(), i);
  // Quadratic behaviour (an array's shift()) takes minutes here; linear takes milliseconds.
  assert.ok(performance.now() - started < 5000, 'linear time');
});
