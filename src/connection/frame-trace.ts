/**
 * Frame tracing for debugging (`debug: true` or `WARREN_DEBUG=frames`): one readable line per frame
 * in each direction. Secrets (SASL responses, update-secret) are never printed.
 *
 * @module
 */
import { decodeContentHeader } from '../protocol/content-header.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { decodeMethod } from '../protocol/generated/methods.js';
import { Reader } from '../protocol/reader.js';
import { callUserCode } from '../user-code.js';
import { readEnv } from '../env.js';

const SECRET_FIELDS = new Set(['response', 'newSecret', 'challenge']);
/** Method arguments that 0-9-1 reserves and that always hold the same value: noise in a trace line. */
const RESERVED_ARGS = new Set([
  'ticket',
  'immediate',
  'insist',
  'outOfBand',
  'knownHosts',
  'channelId',
  'capabilities',
]);

/** A method's arguments without the reserved ones and without `nowait: false`. */
function meaningful(args: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    if (!RESERVED_ARGS.has(k) && !(k === 'nowait' && v === false)) out[k] = v;
  }
  return out;
}
const TYPE_NAMES: Record<number, string> = { 1: 'method', 2: 'header', 3: 'body', 8: 'heartbeat' };

function show(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => {
    if (SECRET_FIELDS.has(key)) return '<redacted>';
    if (typeof v === 'bigint') return `${v}n`;
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') return '<bytes>';
    return v;
  });
}

/** Formats one frame payload as a single line. */
export function describeFrame(type: number, channel: number, buf: Buffer, start: number, end: number): string {
  const prefix = `ch=${channel}`;
  try {
    if (type === 1) {
      const m = decodeMethod(new Reader(buf, start, end));
      return m === undefined ? `${prefix} unknown method` : `${prefix} ${m.name} ${show(meaningful(m.args))}`;
    }
    if (type === 2) {
      const h = decodeContentHeader(new Reader(buf, start, end));
      const properties = h.decodeError ? `(undecodable properties: ${h.decodeError.message})` : show(h.properties);
      return `${prefix} header size=${h.bodySize} ${properties}`;
    }
    if (type === 3) return `${prefix} body ${end - start} B`;
    return `${prefix} ${TYPE_NAMES[type] ?? `type ${type}`}`;
  } catch (err) {
    return `${prefix} ${TYPE_NAMES[type] ?? type} (undecodable: ${(err as Error).message})`;
  }
}

export class FrameTracer {
  private readonly print: (line: string) => void;
  private readonly outDecoder: FrameDecoder;

  private constructor(print: (line: string) => void) {
    // The printer is the application's (a logger): what it throws must not fail the frame it traces.
    this.print = (line) => {
      callUserCode("'debug' frame printer", print, undefined, line);
    };
    this.outDecoder = new FrameDecoder(0xffffffff, (type, channel, buf, start, end) =>
      this.print(`warren > ${describeFrame(type, channel, buf, start, end)}`),
    );
  }

  /** A tracer if `debug` or the WARREN_DEBUG environment variable asks for one. */
  static fromOption(debug: boolean | ((line: string) => void)): FrameTracer | undefined {
    if (typeof debug === 'function') return new FrameTracer(debug);
    const env = readEnv('WARREN_DEBUG') ?? '';
    if (debug || /\bframes\b/.test(env)) return new FrameTracer((line) => process.stderr.write(`${line}\n`));
    return undefined;
  }

  incoming(type: number, channel: number, buf: Buffer, start: number, end: number): void {
    this.print(`warren < ${describeFrame(type, channel, buf, start, end)}`);
  }

  outgoing(chunk: Buffer): void {
    try {
      this.outDecoder.push(chunk);
    } catch {
      this.print('warren > (untraceable bytes)');
    }
  }
}
