/**
 * docs/cli.md documents exactly the options the CLI has.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DOC, updated } from './cli-docs.js';

test('docs/cli.md matches warren --help (regenerate: node --import tsx test/cli/cli-docs.ts --write)', () => {
  const current = readFileSync(DOC, 'utf8');
  assert.equal(current, updated(current));
});
