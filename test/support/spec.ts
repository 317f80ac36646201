/**
 * RabbitMQ's AMQP 0-9-1 spec JSON, read the way scripts/gen-protocol.ts reads it, for the property
 * tests that drive themselves from the spec (a method or property added to it is covered without
 * touching them), and the fast-check settings they share.
 *
 *   const spec = loadSpec();                       // $WARREN_SPEC, else ../shared/spec/
 *   fc.assert(property, runs(500));                // seeded: $FC_SEED, else fixed
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fast-check seed: $FC_SEED, else a fixed one, so that a run is repeatable. */
export const SEED = Number(process.env.FC_SEED ?? 0x9091);
/** fast-check parameters: the shared seed and `numRuns`. */
export const runs = (numRuns: number) => ({ seed: SEED, numRuns });

export interface SpecArgument {
  name: string;
  type?: string;
  domain?: string;
  'default-value'?: unknown;
}
export interface SpecMethod {
  id: number;
  name: string;
  synchronous?: boolean;
  content?: boolean;
  arguments: SpecArgument[];
}
export interface SpecClass {
  id: number;
  name: string;
  methods: SpecMethod[];
  properties?: SpecArgument[];
}
export interface Spec {
  domains: [string, string][];
  classes: SpecClass[];
}

const root = resolve(fileURLToPath(import.meta.url), '../../..');

/** The spec JSON: $WARREN_SPEC, else the shared copy next to the project. */
export function loadSpec(): Spec {
  const path = resolve(root, process.env.WARREN_SPEC ?? '../shared/spec/amqp-rabbitmq-0.9.1.json');
  return JSON.parse(readFileSync(path, 'utf8')) as Spec;
}

/** A spec name (`delivery-tag`) as the codec names it (`deliveryTag`). */
export const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
