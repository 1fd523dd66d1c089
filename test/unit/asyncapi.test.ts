// docs/asyncapi.yaml: a valid AsyncAPI document (parsed and validated by @asyncapi/parser, its Avro
// payloads by @asyncapi/avro-schema-parser) whose channels are the config's topics and whose
// payloads are exactly the schemas/ files.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';
import { DiagnosticSeverity, Parser, fromFile, type AsyncAPIDocumentInterface } from '@asyncapi/parser';
import { beforeAll, describe, expect, it } from 'vitest';
import { TOPIC_KEYS_WITH_SCHEMAS } from '../../config/schema.js';
import { SCHEMA_FILES, TOPIC_KEY, type SchemaRole } from '../../src/kafka/codec.js';
import { PRODUCED_ROLES } from '../../src/kafka/subjects.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { parse as parseYaml } from 'yaml';

const FILE = join(PROJECT_ROOT, 'docs', 'asyncapi.yaml');
const roleOf = Object.fromEntries(Object.entries(TOPIC_KEY).map(([role, key]) => [key, role as SchemaRole]));

let doc: AsyncAPIDocumentInterface;
let problems: string[];
beforeAll(async () => {
  const parser = new Parser();
  parser.registerSchemaParser(AvroSchemaParser());
  const { document, diagnostics } = await fromFile(parser, FILE).parse();
  problems = diagnostics
    .filter((d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning)
    .map((d) => `${d.path.join('.')}: ${d.message}`);
  doc = document!;
});

describe('docs/asyncapi.yaml', () => {
  it('is a valid AsyncAPI document, without errors or warnings', () => {
    expect(problems).toEqual([]);
    expect(doc).toBeDefined();
  });

  it("has one channel per topic in config.topics (but the internal one), at the default config's address", () => {
    const { topics } = loadConfig({ env: {} }).config;
    expect(
      doc
        .channels()
        .all()
        .map((c) => c.id())
        .sort(),
    ).toEqual([...TOPIC_KEYS_WITH_SCHEMAS].sort());
    for (const key of TOPIC_KEYS_WITH_SCHEMAS) {
      const channel = doc.channels().get(key)!;
      expect(channel.address(), key).toBe(topics[key]);
      expect((channel.bindings().get('kafka')?.value() as { partitions?: number }).partitions, key).toBe(
        topics.partitions,
      );
    }
    expect(
      doc
        .channels()
        .all()
        .map((c) => c.address()),
    ).not.toContain(topics.counterparts);
  });

  it('fairflag receives the inputs and sends the flags and dead letters', () => {
    for (const key of TOPIC_KEYS_WITH_SCHEMAS) {
      const ops = doc.operations().filterBy((op) =>
        op
          .channels()
          .all()
          .some((c) => c.id() === key),
      );
      const produced = (PRODUCED_ROLES as readonly string[]).includes(roleOf[key]!);
      expect(
        ops.map((op) => op.action()),
        key,
      ).toEqual([produced ? 'send' : 'receive']);
    }
  });

  it("each message payload is its topic's file in schemas/, and every file there is used", () => {
    const raw = parseYaml(readFileSync(FILE, 'utf8')) as {
      components: {
        messages: Record<string, { payload: { schemaFormat: string; schema: { $ref: string } } }>;
      };
    };
    const used: string[] = [];
    for (const key of TOPIC_KEYS_WITH_SCHEMAS) {
      const file = SCHEMA_FILES[roleOf[key]!];
      const avsc = JSON.parse(readFileSync(join(PROJECT_ROOT, 'schemas', file), 'utf8')) as {
        name: string;
        fields: { name: string }[];
      };
      const [message, ...others] = doc.channels().get(key)!.messages().all();
      expect(others, key).toEqual([]);
      expect(message!.id(), key).toBe(avsc.name);
      expect(message!.schemaFormat(), key).toMatch(/^application\/vnd\.apache\.avro\+json;version=1\.9\.0$/);
      expect(raw.components.messages[avsc.name]!.payload.schema.$ref, key).toBe(`../schemas/${file}`);
      // the parser read the file: its JSON Schema rendering has the record's fields
      const properties = Object.keys(message!.payload()!.properties() ?? {});
      expect(properties.sort(), key).toEqual(avsc.fields.map((f) => f.name).sort());
      used.push(file);
    }
    expect(used.sort()).toEqual(
      readdirSync(join(PROJECT_ROOT, 'schemas'))
        .filter((f) => f.endsWith('.avsc'))
        .sort(),
    );
  });
});
