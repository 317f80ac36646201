/**
 * The content header frame's payload, encoded and decoded as a pair: class id, weight, body size,
 * then the property flags and properties of the basic class (spec 4.2.6.1).
 *
 * @module
 */
import { REPLY_CODES } from './generated/constants.js';
import { FrameError } from '../errors.js';
import {
  BASIC_CLASS_ID,
  type BasicProperties,
  decodeBasicProperties,
  encodeBasicProperties,
} from './generated/properties.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

/** A decoded content header. */
export interface ContentHeader {
  /** Size of the body that follows in body frames, in bytes. */
  bodySize: number;
  /** The message properties; `{}` when they could not be decoded (see `decodeError`). */
  properties: BasicProperties;
  /**
   * Why the properties could not be decoded (an unknown field type, a table nested too deep…).
   * The framing around them was intact, so the message can still be assembled and handed on.
   */
  decodeError: FrameError | undefined;
}

/**
 * Writes a content header payload for a body of `bodySize` bytes. Throws `InvalidArgumentError`
 * for properties that cannot be sent; what it wrote is then the caller's to roll back.
 * `classId` is for tests that must produce a wrong one.
 */
export function encodeContentHeader(
  w: Writer,
  bodySize: number,
  properties: BasicProperties | undefined,
  classId: number = BASIC_CLASS_ID,
): void {
  w.ensure(12);
  w.buf.writeUInt16BE(classId, w.pos);
  w.buf.writeUInt16BE(0, w.pos + 2); // weight, unused
  w.pos += 4;
  w.u64(bodySize);
  if (properties === undefined) w.u16(0);
  else encodeBasicProperties(w, properties);
}

/**
 * Reads a content header payload from `r` (positioned at its start, `end` at the frame's end).
 * Throws `FrameError` only when the message cannot be framed: a class other than basic (505, as the
 * spec says of wrong class ids) or a truncated or oversized body size (502). Properties that do not
 * decode affect this message alone: they come back in `decodeError`, with `properties` empty.
 * Fills `into` when given (the inbound path reuses one object, so a delivery allocates no header).
 */
export function decodeContentHeader(r: Reader, into?: ContentHeader): ContentHeader {
  const classId = r.u16();
  if (classId !== BASIC_CLASS_ID) {
    throw new FrameError(
      `content header of class ${classId}, expected ${BASIC_CLASS_ID}`,
      REPLY_CODES.UNEXPECTED_FRAME,
    );
  }
  r.u16(); // weight, unused
  const bodySize = r.u64();
  let properties: BasicProperties;
  let decodeError: FrameError | undefined;
  try {
    properties = decodeBasicProperties(r);
  } catch (err) {
    if (!(err instanceof FrameError)) throw err;
    properties = {};
    decodeError = err;
  }
  if (into === undefined) return { bodySize, properties, decodeError };
  into.bodySize = bodySize;
  into.properties = properties;
  into.decodeError = decodeError;
  return into;
}
