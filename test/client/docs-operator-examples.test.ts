/**
 * The examples of the README's "Deadlines, credentials and limits" section are tests: each ```ts
 * block runs as a program of its own (with `from 'warren'` pointed at the sources) against the
 * broker, and must exit with status 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readmeSection, runExamples } from '../support/readme-examples.js';

const { start, blocks } = readmeSection('Deadlines, credentials and limits');

test('the section has its four examples', () => {
  assert.ok(start > 0, 'the README has the section');
  assert.deepEqual(
    blocks.map((b) => b.title),
    ['Deadlines', 'Credentials that change', 'Bounded publishing', 'Giving up'],
  );
});

runExamples(blocks, 'warren-docs-ops-');
