// The schema registry's Confluent-compatible API, called directly: what a producer team or an
// operator does to a subject (register a version, set its compatibility), for tests to set up.

export async function registryCall<T = unknown>(
  registryUrl: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${registryUrl.replace(/\/+$/, '')}${path}`, {
    method: init.method ?? 'GET',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Registers a version under a subject as its producer would; throws with the registry's answer. */
export async function registerVersion(registryUrl: string, subject: string, schema: object): Promise<number> {
  const r = await registryCall<{ id: number }>(
    registryUrl,
    `/subjects/${encodeURIComponent(subject)}/versions`,
    { method: 'POST', body: { schema: JSON.stringify(schema) } },
  );
  if (r.status !== 200) throw new Error(`registering ${subject}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

export async function setCompatibility(registryUrl: string, subject: string, level: string): Promise<void> {
  const r = await registryCall(registryUrl, `/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    body: { compatibility: level },
  });
  if (r.status !== 200)
    throw new Error(`compatibility of ${subject}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
}

export async function compatibilityOf(registryUrl: string, subject: string): Promise<string | undefined> {
  const r = await registryCall<{ compatibilityLevel?: string }>(
    registryUrl,
    `/config/${encodeURIComponent(subject)}`,
  );
  return r.body?.compatibilityLevel;
}

export async function versionsOf(registryUrl: string, subject: string): Promise<number[]> {
  const r = await registryCall<number[]>(registryUrl, `/subjects/${encodeURIComponent(subject)}/versions`);
  return r.status === 200 ? r.body : [];
}
