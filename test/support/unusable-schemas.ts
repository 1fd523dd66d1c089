// Schemas a Confluent-compatible registry accepts but fairflag cannot use, registered for real
// through the registry's ccompat API (POST /subjects/<subject>/versions): issue 17's trigger 1.

export interface UnusableSchemas {
  /** A JSON Schema draft-04 document (the registry's client cannot even compile it). */
  draft04: number;
  /** A JSON schema with `format: email`. */
  emailFormat: number;
  /** An Avro record of LoginEvent's name whose union default is not of its first branch. */
  unionDefault: number;
}

async function register(registryUrl: string, subject: string, body: object): Promise<number> {
  const res = await fetch(
    `${registryUrl.replace(/\/+$/, '')}/subjects/${encodeURIComponent(subject)}/versions`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify(body),
    },
  );
  const text = await res.text();
  if (!res.ok) throw new Error(`registering ${subject}: HTTP ${res.status} ${text}`);
  return (JSON.parse(text) as { id: number }).id;
}

export async function registerUnusableSchemas(registryUrl: string, prefix: string): Promise<UnusableSchemas> {
  return {
    draft04: await register(registryUrl, `${prefix}-draft04-value`, {
      schemaType: 'JSON',
      schema: JSON.stringify({
        $schema: 'http://json-schema.org/draft-04/schema#',
        type: 'object',
        properties: { eventId: { type: 'string' } },
      }),
    }),
    emailFormat: await register(registryUrl, `${prefix}-email-value`, {
      schemaType: 'JSON',
      schema: JSON.stringify({ type: 'object', properties: { email: { type: 'string', format: 'email' } } }),
    }),
    unionDefault: await register(registryUrl, `${prefix}-union-value`, {
      schema: JSON.stringify({
        type: 'record',
        name: 'LoginEvent',
        namespace: 'fairflag.activity',
        fields: [{ name: 'eventId', type: ['null', 'string'], default: 'not-null' }],
      }),
    }),
  };
}

/** `0x00`, a schema id, then the body: the Confluent wire format, whatever the id means. */
export function wireFrame(id: number, body: Buffer = Buffer.from('payload')): Buffer {
  const h = Buffer.alloc(5);
  h.writeInt32BE(id, 1);
  return Buffer.concat([h, body]);
}
