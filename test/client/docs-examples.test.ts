/**
 * The examples of docs/robust-client.md are tests: each ```ts block runs as a program of its own
 * (with `from 'warren'` pointed at the sources) against the broker, and must exit with status 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readmeSection, runExamples } from '../support/readme-examples.js';

// The README's robust-client section.
const { blocks } = readmeSection('The robust client');

test('the document has its examples', () => {
  assert.deepEqual(
    blocks.map((b) => b.title),
    [
      'Publisher',
      'Consumer',
      'Async iterator',
      'RPC',
      'Declare options',
      'Consumer control',
      'Health, stats and logging',
      'Metrics',
    ],
  );
});

runExamples(blocks, 'warren-docs-');
