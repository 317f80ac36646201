/**
 * Transitional re-export of the codec primitives, which now live in `field-values.ts`, `reader.ts`
 * and `writer.ts`. Only src/client/ and src/channel/channel.ts still import from here (they are
 * being reworked elsewhere); new code imports the three modules directly. Delete once unused.
 *
 * @module
 */
export type { FieldTable, FieldTypeTag, FieldValue } from './field-values.js';
export { AmqpTimestamp, Decimal, fieldTypeOf, TypedValue } from './field-values.js';
export { Reader } from './reader.js';
export { Writer } from './writer.js';
