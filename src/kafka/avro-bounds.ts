// A bounded walk over Avro binary data before avsc decodes it. An array or map block says how many
// items follow, and avsc loops that many times whatever the bytes left: a corrupt or hostile
// message whose writer schema has a collection (any registered schema of the topic's record name,
// say a later version) could declare 2^31 items in five bytes and hold the processor's one thread
// for seconds, or allocate gigabytes (null items take no bytes at all). Here every item of every
// collection counts against the message's length, so the walk and the decode after it stay linear.
import type avro from 'avsc';

/** Deeper than any schema fairflag reads: a guard against recursive schemas, not a real limit. */
const MAX_DEPTH = 64;
const MAP_KEY = { typeName: 'string' } as const;

interface Cursor {
  buf: Buffer;
  pos: number;
  /** Collection items still allowed: starts at the message's length. */
  items: number;
}

export class AvroBoundsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AvroBoundsError';
  }
}

type AnyType = avro.Type & {
  typeName: string;
  fields?: { type: AnyType }[];
  itemsType?: AnyType;
  valuesType?: AnyType;
  types?: AnyType[];
  underlyingType?: AnyType;
  size?: number;
};

/** Whether a writer schema has an array or map anywhere: only those need the walk. */
export function hasCollections(type: avro.Type): boolean {
  const seen = new Set<AnyType>();
  const visit = (t: AnyType): boolean => {
    if (seen.has(t)) return false;
    seen.add(t);
    if (t.typeName === 'array' || t.typeName === 'map') return true;
    const inner = [...(t.fields ?? []).map((f) => f.type), ...(t.types ?? [])];
    if (t.underlyingType) inner.push(t.underlyingType);
    return inner.some(visit);
  };
  return visit(type as AnyType);
}

/**
 * Walks `buf` as data of `type` and throws AvroBoundsError when a collection claims more items than
 * the message has bytes, or a length or union branch points outside the data. Decoding is still
 * avsc's; this only makes sure it ends soon. Returns the bytes walked.
 */
export function checkAvroBounds(type: avro.Type, buf: Buffer): number {
  const c: Cursor = { buf, pos: 0, items: buf.length };
  walk(type as AnyType, c, 0);
  return c.pos;
}

function walk(t: AnyType, c: Cursor, depth: number): void {
  if (depth > MAX_DEPTH) throw new AvroBoundsError(`nested deeper than ${MAX_DEPTH} levels`);
  switch (t.typeName) {
    case 'null':
      return;
    case 'boolean':
      return skip(c, 1);
    case 'int':
    case 'long':
    case 'enum':
      readLong(c);
      return;
    case 'float':
      return skip(c, 4);
    case 'double':
      return skip(c, 8);
    case 'string':
    case 'bytes': {
      const len = readLong(c);
      if (len < 0) throw new AvroBoundsError(`negative length ${len} at byte ${c.pos}`);
      return skip(c, len);
    }
    case 'fixed':
      return skip(c, t.size ?? 0);
    case 'record':
    case 'error':
      for (const f of t.fields ?? []) walk(f.type, c, depth + 1);
      return;
    case 'array':
    case 'map':
      return walkBlocks(t, c, depth);
    default:
      if (t.typeName.startsWith('union')) {
        const i = readLong(c);
        const branch = t.types?.[i];
        if (!branch)
          throw new AvroBoundsError(`union branch ${i} of ${t.types?.length ?? 0} at byte ${c.pos}`);
        return walk(branch, c, depth + 1);
      }
      if (t.underlyingType) return walk(t.underlyingType, c, depth + 1);
      throw new AvroBoundsError(`cannot check Avro type ${t.typeName}`);
  }
}

function walkBlocks(t: AnyType, c: Cursor, depth: number): void {
  for (;;) {
    let n = readLong(c);
    if (n === 0) return;
    if (n < 0) {
      // a block with its byte size after the count; the items are walked all the same
      n = -n;
      readLong(c);
    }
    if (n > c.items) {
      throw new AvroBoundsError(
        `${t.typeName === 'map' ? 'a map' : 'an array'} block of ${n} items in a message of ${c.buf.length} bytes (at byte ${c.pos})`,
      );
    }
    c.items -= n;
    for (let i = 0; i < n; i++) {
      if (t.typeName === 'map') walk(MAP_KEY as AnyType, c, depth + 1);
      walk((t.itemsType ?? t.valuesType)!, c, depth + 1);
    }
  }
}

function skip(c: Cursor, n: number): void {
  if (c.pos + n > c.buf.length) {
    throw new AvroBoundsError(`${n} bytes wanted at byte ${c.pos} of ${c.buf.length}`);
  }
  c.pos += n;
}

/** An Avro long: zig-zag varint, at most ten bytes. Exact up to 2^53, which is all a bound needs. */
function readLong(c: Cursor): number {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (c.pos >= c.buf.length) throw new AvroBoundsError(`data ends inside a number at byte ${c.pos}`);
    const b = c.buf[c.pos++]!;
    n += (b & 0x7f) * scale;
    if (!(b & 0x80)) return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    scale *= 128;
  }
  throw new AvroBoundsError(`a number longer than ten bytes at byte ${c.pos}`);
}
