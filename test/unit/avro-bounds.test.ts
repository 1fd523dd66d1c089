import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AvroBoundsError, checkAvroBounds, hasCollections } from '../../src/kafka/avro-bounds.js';

// A writer schema with every kind of value the walk must step over: the head, then collections.
const HEAD = [
  { name: 'id', type: 'string' },
  { name: 'n', type: 'long' },
  { name: 'ok', type: 'boolean' },
  { name: 'f', type: 'float' },
  { name: 'd', type: ['null', 'double'] },
  { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B', 'C'] } },
  { name: 'blob', type: { type: 'fixed', name: 'Four', size: 4 } },
  { name: 'raw', type: 'bytes' },
];
const writer = avro.Type.forSchema({
  type: 'record',
  name: 'LoginEvent',
  namespace: 'test',
  fields: [
    ...HEAD,
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'attrs', type: { type: 'map', values: 'long' } },
    { name: 'nothing', type: { type: 'array', items: 'null' } },
    { name: 'grid', type: { type: 'array', items: { type: 'array', items: 'int' } } },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
} as avro.Schema);

const value = fc.record({
  id: fc.string(),
  n: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
  ok: fc.boolean(),
  f: fc.float({ noNaN: true }),
  d: fc.option(fc.double({ noNaN: true }), { nil: null }),
  kind: fc.constantFrom('A', 'B', 'C'),
  blob: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => Buffer.from(b)),
  raw: fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b)),
  tags: fc.array(fc.string(), { maxLength: 5 }),
  attrs: fc.dictionary(fc.string(), fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), { maxKeys: 4 }),
  nothing: fc.array(fc.constant(null), { maxLength: 30 }),
  grid: fc.array(fc.array(fc.integer(), { maxLength: 4 }), { maxLength: 4 }),
  at: fc.integer({ min: 0, max: 2 ** 40 }),
});

/** The bytes of an all-empty head: what comes before the `tags` array. */
function upToTags(): Buffer {
  return avro.Type.forSchema({ type: 'record', name: 'Head', fields: HEAD } as avro.Schema).toBuffer({
    id: '',
    n: 0,
    ok: false,
    f: 0,
    d: null,
    kind: 'A',
    blob: Buffer.alloc(4),
    raw: Buffer.alloc(0),
  });
}
const long = (n: number) => avro.Type.forSchema('long').toBuffer(n);

describe('bounded walk over Avro data (avro-bounds)', () => {
  it('finds the schemas that need it', () => {
    expect(hasCollections(writer)).toBe(true);
    expect(
      hasCollections(
        avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }] }),
      ),
    ).toBe(false);
    expect(
      hasCollections(
        avro.Type.forSchema({
          type: 'record',
          name: 'R',
          fields: [{ name: 'a', type: ['null', { type: 'map', values: 'string' }] }],
        }),
      ),
    ).toBe(true);
  });

  it('lets every well-formed value through', () => {
    fc.assert(
      fc.property(value, (v) => {
        const buf = writer.toBuffer(v);
        expect(checkAvroBounds(writer, buf)).toBe(buf.length);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts a block written with its byte size (a negative count)', () => {
    const tail = Buffer.concat([
      long(-2), // two items, then the block's size in bytes
      long(4),
      avro.Type.forSchema('string').toBuffer('a'),
      avro.Type.forSchema('string').toBuffer('b'),
      long(0), // end of tags
      long(0), // attrs
      long(0), // nothing
      long(0), // grid
      long(0), // at
    ]);
    const buf = Buffer.concat([upToTags(), tail]);
    expect(checkAvroBounds(writer, buf)).toBe(buf.length);
    expect((writer.fromBuffer(buf) as { tags: string[] }).tags).toEqual(['a', 'b']);
  });

  it('refuses a block that claims more items than the message has bytes, at once', () => {
    for (const [field, count] of [
      ['tags', 2 ** 31],
      ['nothing', 2 ** 31],
      ['nothing', 2 ** 52],
    ] as const) {
      const lead = field === 'tags' ? [] : [long(0), long(0)]; // empty tags and attrs first
      const buf = Buffer.concat([upToTags(), ...lead, long(count)]);
      const started = performance.now();
      expect(() => checkAvroBounds(writer, buf)).toThrow(AvroBoundsError);
      expect(() => checkAvroBounds(writer, buf)).toThrow(
        new RegExp(`^an array block of ${count} items in a message of ${buf.length} bytes`),
      );
      expect(performance.now() - started).toBeLessThan(50);
    }
    // the same for a map, and for many small blocks that add up
    const map = Buffer.concat([upToTags(), long(0), long(1_000_000)]);
    expect(() => checkAvroBounds(writer, map)).toThrow(/^a map block of 1000000 items/);
    const small = Buffer.concat([
      upToTags(),
      long(0),
      long(0),
      ...Array.from({ length: 40 }, () => long(20)),
    ]);
    expect(() => checkAvroBounds(writer, small)).toThrow(AvroBoundsError);
  });

  it('refuses data that ends early or points outside itself', () => {
    const good = writer.toBuffer(fc.sample(value, { numRuns: 1, seed: 7 })[0]);
    for (let cut = 0; cut < good.length; cut++) {
      expect(() => checkAvroBounds(writer, good.subarray(0, cut))).toThrow(AvroBoundsError);
    }
    // union branch 5 of 2
    const d = Buffer.concat([long(0), long(0), Buffer.from([0]), Buffer.alloc(4), long(5)]);
    expect(() => checkAvroBounds(writer, d)).toThrow(/union branch 5 of 2/);
  });
});
