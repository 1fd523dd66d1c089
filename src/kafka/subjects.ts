// The registry subjects fairflag uses ("<topic>-value") and what it requires of them at start-up:
// the subjects it produces to are registered with an explicit compatibility level; the input
// subjects, which their producers own, must exist, have a level at least as strict as configured,
// and hold only versions fairflag's own schema can read (docs/schemas.md).
import avro from 'avsc';
import type { CompatibilityLevel, Config } from '../../config/schema.js';

/** The topic roles fairflag writes; every other role is an input it reads. */
export const PRODUCED_ROLES = ['flag', 'deadLetter'] as const;

/** A subject fairflag cannot use as configured: start-up stops with this, it is not retried. */
export class SchemaSubjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaSubjectError';
  }
}

/** What each level promises, as the pairs of versions it checks (Confluent's definitions). */
const PROMISES: Record<CompatibilityLevel, { backward: 0 | 1 | 2; forward: 0 | 1 | 2 }> = {
  NONE: { backward: 0, forward: 0 },
  BACKWARD: { backward: 1, forward: 0 },
  BACKWARD_TRANSITIVE: { backward: 2, forward: 0 },
  FORWARD: { backward: 0, forward: 1 },
  FORWARD_TRANSITIVE: { backward: 0, forward: 2 },
  FULL: { backward: 1, forward: 1 },
  FULL_TRANSITIVE: { backward: 2, forward: 2 },
};

/**
 * Whether a subject at `actual` keeps every promise of `required` (1: against the latest version,
 * 2: against all of them): FULL_TRANSITIVE satisfies any requirement, NONE only NONE.
 */
export function satisfies(actual: CompatibilityLevel, required: CompatibilityLevel): boolean {
  const a = PROMISES[actual];
  const r = PROMISES[required];
  return a.backward >= r.backward && a.forward >= r.forward;
}

/** The level configured for a topic key: its own entry in subjectCompatibility, else the default. */
export function levelFor(
  topicKey: keyof Config['registry']['subjectCompatibility'],
  cfg: Config['registry'],
): CompatibilityLevel {
  return cfg.subjectCompatibility[topicKey] ?? cfg.compatibility;
}

/** A registry's answer for GET /subjects/{subject}/versions/{version}. */
export interface SubjectVersion {
  id: number;
  version: number;
  schema?: unknown;
  schemaType?: string;
  references?: unknown[];
}

/**
 * Whether fairflag, reading with `reader` (its own schema of the topic), can read messages
 * written with this registered version: the compiled writer if so, else why not.
 */
export function readability(
  reader: avro.Type & { name?: string },
  v: SubjectVersion,
): { problem: string } | { writer: avro.Type } {
  const type = v.schemaType ?? 'AVRO';
  if (type !== 'AVRO') return { problem: `is a ${type} schema, fairflag reads Avro` };
  if (v.references?.length) return { problem: 'refers to other schemas, which fairflag does not resolve' };
  if (typeof v.schema !== 'string') return { problem: 'has no schema text' };
  let writer: avro.Type & { name?: string };
  try {
    writer = avro.Type.forSchema(JSON.parse(v.schema) as avro.Schema);
  } catch (err) {
    return { problem: `does not compile as Avro: ${(err as Error).message.slice(0, 300)}` };
  }
  if (writer.name !== reader.name)
    return { problem: `is ${writer.name ?? 'unnamed'}, fairflag reads ${reader.name} here` };
  try {
    reader.createResolver(writer);
  } catch (err) {
    return { problem: `cannot be read with fairflag's ${reader.name}: ${(err as Error).message}` };
  }
  return { writer };
}

/** One request to the registry's Confluent-compatible API (the codec's, with its timeout). */
export type RegistryRequest = (path: string, init?: { method?: string; body?: unknown }) => Promise<Response>;

const path = (subject: string) => `/subjects/${encodeURIComponent(subject)}`;

async function answer<T>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/**
 * The subject's compatibility level, the global one when it has none of its own (Apicurio answers
 * so anyway; Confluent's registry only when asked with defaultToGlobal).
 */
export async function subjectLevel(request: RegistryRequest, subject: string): Promise<string> {
  const res = await request(`/config/${encodeURIComponent(subject)}?defaultToGlobal=true`);
  const body = await answer<{ compatibilityLevel?: string; compatibility?: string }>(
    res,
    `compatibility of ${subject}`,
  );
  return body.compatibilityLevel ?? body.compatibility ?? 'unknown';
}

export async function setSubjectLevel(
  request: RegistryRequest,
  subject: string,
  level: CompatibilityLevel,
): Promise<void> {
  const res = await request(`/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    body: { compatibility: level },
  });
  await answer(res, `setting compatibility ${level} on ${subject}`);
}

/** The subject's versions, or undefined when the registry has no such subject. */
export async function subjectVersions(
  request: RegistryRequest,
  subject: string,
): Promise<SubjectVersion[] | undefined> {
  const res = await request(`${path(subject)}/versions`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  const numbers = await answer<number[]>(res, `versions of ${subject}`);
  const out: SubjectVersion[] = [];
  for (const n of numbers)
    out.push(
      await answer<SubjectVersion>(await request(`${path(subject)}/versions/${n}`), `${subject} v${n}`),
    );
  return out;
}

/** The id of exactly this schema under the subject, or undefined when it is not one of its versions. */
export async function idUnderSubject(
  request: RegistryRequest,
  subject: string,
  schema: string,
): Promise<number | undefined> {
  const res = await request(path(subject), { method: 'POST', body: { schema } });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  return (await answer<{ id: number }>(res, `looking up fairflag's schema under ${subject}`)).id;
}
