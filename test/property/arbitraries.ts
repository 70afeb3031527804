import fc from 'fast-check';

/**
 * Generators for hostile input to the REST API: values, bodies (valid ones, then mutated),
 * headers, ids in paths and query strings. Bodies are built as `Fuzz` trees and serialized by
 * hand, so they can hold what JSON.stringify cannot write: nesting 100,000 levels deep and
 * number literals such as 1e400 or -0.
 */

/** Nesting `depth` levels deep, written out only when serialized. */
export class Deep {
  constructor(
    readonly depth: number,
    readonly kind: 'array' | 'object',
  ) {}
}

/** JSON text written as is (number literals JSON.stringify would normalize). */
export class Literal {
  constructor(readonly text: string) {}
}

export type Fuzz = null | boolean | number | string | Deep | Literal | Fuzz[] | { [key: string]: Fuzz };

export function serialize(value: Fuzz): string {
  if (value instanceof Deep) {
    return value.kind === 'array'
      ? `${'['.repeat(value.depth)}1${']'.repeat(value.depth)}`
      : `${'{"a":'.repeat(value.depth)}1${'}'.repeat(value.depth)}`;
  }
  if (value instanceof Literal) return value.text;
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ---------------------------------------------------------------------------------------------
// Strings

const SQL_AND_FRIENDS = [
  "'; DROP TABLE dispatch_tasks; --",
  "' OR '1'='1",
  '1 OR 1=1',
  "Robert'); DELETE FROM dispatch_task_events;--",
  '$1',
  '$$',
  "E'\\\\000'",
  '\\x00',
  '%00',
  '%s%s%s%n',
  '${process.exit()}',
  '{{7*7}}',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e308',
  '-0',
  '0x7fffffff',
  '2147483648',
  'true',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  '',
  ' ',
  '\t\r\n',
  '\u202e\u0645\u0631\u062d\u0628\u0627',
  '\ufeff',
  '\uffff',
  '\u{10ffff}',
  '💥🧨',
  'e\u0301\u0301\u0301',
];

/** A lone surrogate somewhere: valid in a JS string, not in UTF-8 or in PostgreSQL's jsonb. */
export const loneSurrogateString = fc
  .tuple(fc.string({ maxLength: 8 }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.string({ maxLength: 8 }))
  .map(([a, unit, b]) => `${a}${String.fromCharCode(unit)}${b}`);

/** A NUL somewhere: PostgreSQL's text and jsonb cannot store it. */
export const nulString = fc
  .tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }))
  .map(([a, b]) => `${a}\u0000${b}`);

/** Any UTF-16 code units at all, surrogates included. */
const anyCodeUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)), maxLength: 30 });

export const hugeString = fc
  .tuple(fc.integer({ min: 10_000, max: 400_000 }), fc.constantFrom('x', 'é', '💥', '\u0000', ' '))
  .map(([n, ch]) => ch.repeat(Math.ceil(n / ch.length)));

export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...SQL_AND_FRIENDS), weight: 4 },
  { arbitrary: fc.string({ maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
  { arbitrary: anyCodeUnits, weight: 2 },
  { arbitrary: loneSurrogateString, weight: 2 },
  { arbitrary: nulString, weight: 2 },
  { arbitrary: hugeString, weight: 1 },
);

// ---------------------------------------------------------------------------------------------
// Values

const nastyNumber: fc.Arbitrary<Fuzz> = fc.oneof(
  fc.constantFrom<Fuzz>(
    0,
    -1,
    1,
    3,
    5,
    6,
    1.5,
    0.1,
    1e308,
    -1e308,
    2 ** 31 - 1,
    2 ** 31,
    -(2 ** 31),
    -(2 ** 31) - 1,
    2 ** 53,
    2 ** 53 + 2,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    1e300,
    new Literal('-0'),
    new Literal('-0.0'),
    new Literal('1e400'),
    new Literal('-1e400'),
    new Literal('1e-400'),
    new Literal('1.0'),
    new Literal('5.000000000000000000001'),
    new Literal('123456789012345678901234567890'),
    new Literal('1E2'),
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

export const deepNesting = fc.tuple(fc.integer({ min: 2, max: 120_000 }), fc.constantFrom<'array' | 'object'>('array', 'object')).map(
  ([depth, kind]) => new Deep(depth, kind),
);

export const nastyKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', ' ', '__proto__', 'constructor', 'prototype', 'attempt', 'status', 'a.b', '$where', '\u0000', 'k\u0000', '\ud800'),
  nastyString.filter((s) => s.length < 200),
);

const nastyLeaf: fc.Arbitrary<Fuzz> = fc.oneof(
  { arbitrary: nastyString, weight: 5 },
  { arbitrary: nastyNumber, weight: 4 },
  { arbitrary: fc.constantFrom<Fuzz>(null, true, false, [], {}), weight: 2 },
  { arbitrary: deepNesting, weight: 1 },
);

/** Any of the above, possibly a small array or object of them (with hostile keys). */
export const nastyValue: fc.Arbitrary<Fuzz> = fc.oneof(
  { arbitrary: nastyLeaf, weight: 6 },
  { arbitrary: fc.array(nastyLeaf, { maxLength: 4 }), weight: 1 },
  { arbitrary: fc.dictionary(nastyKey, nastyLeaf, { maxKeys: 4 }), weight: 2 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Fuzz>, weight: 1 },
);

// ---------------------------------------------------------------------------------------------
// Valid bodies, one generator per endpoint, and how to spoil them

const text = (max: number) => fc.string({ minLength: 1, maxLength: max }).filter((s) => s.trim() !== '');
const json = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Fuzz>;
const int4 = fc.integer({ min: 1, max: 2 ** 31 - 1 });

export type Endpoint = 'create' | 'patch' | 'complete' | 'fail' | 'progress' | 'register';

export const validBodies: Record<Endpoint, fc.Arbitrary<{ [key: string]: Fuzz }>> = {
  create: fc.record(
    {
      title: text(60),
      scope: fc.oneof(fc.constantFrom('fuzz', 'code-review', 'Mixed-Case'), text(30)),
      description: fc.oneof(text(100), fc.constant(null)),
      priority: fc.integer({ min: 1, max: 5 }),
      context: json,
      timeout_ms: int4,
      heartbeat_timeout_ms: fc.oneof(int4, fc.constant(null)),
      start_timeout_ms: fc.oneof(int4, fc.constant(null)),
      max_retries: fc.integer({ min: 0, max: 100 }),
    },
    { requiredKeys: ['title', 'scope'] },
  ),
  patch: fc.oneof(
    fc.constant({ status: 'cancelled' }),
    json.map((context) => ({ context })),
    json.map((context) => ({ status: 'cancelled', context })),
  ),
  complete: fc.record({ result: json, attempt: fc.integer({ min: 1, max: 3 }) }, { requiredKeys: [] }),
  fail: fc.record({ error: text(100), retryable: fc.boolean(), attempt: fc.integer({ min: 1, max: 3 }) }, { requiredKeys: ['error'] }),
  progress: fc
    .tuple(fc.dictionary(fc.string({ maxLength: 10 }), json, { maxKeys: 4 }), fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }))
    .map(([payload, attempt]) => {
      const body: { [key: string]: Fuzz } = { ...payload };
      if (attempt === undefined) delete body.attempt;
      else body.attempt = attempt;
      return body;
    }),
  register: fc.record(
    {
      capabilities: fc.oneof(fc.array(text(20), { maxLength: 5 }), fc.string({ maxLength: 60 })),
      status: fc.constantFrom('ready', 'busy', 'sleeping', 'degraded', 'stopped'),
      max_concurrent: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.constant(null)),
    },
    { requiredKeys: ['capabilities'] },
  ),
};

const KNOWN_KEYS: Record<Endpoint, string[]> = {
  create: ['title', 'scope', 'description', 'priority', 'context', 'timeout_ms', 'heartbeat_timeout_ms', 'start_timeout_ms', 'max_retries', 'parent_id', 'requester'],
  patch: ['status', 'context'],
  complete: ['result', 'attempt'],
  fail: ['error', 'retryable', 'attempt'],
  progress: ['attempt', 'message', 'percent'],
  register: ['capabilities', 'status', 'max_concurrent'],
};

type Mutation = { op: 'drop'; pick: number } | { op: 'set'; key: string; value: Fuzz } | { op: 'nest'; pick: number; value: Fuzz };

function mutation(endpoint: Endpoint): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.nat().map((pick): Mutation => ({ op: 'drop', pick })),
    fc
      .tuple(fc.oneof({ arbitrary: fc.constantFrom(...KNOWN_KEYS[endpoint]), weight: 4 }, { arbitrary: nastyKey, weight: 1 }), nastyValue)
      .map(([key, value]): Mutation => ({ op: 'set', key, value })),
    fc.tuple(fc.nat(), nastyValue).map(([pick, value]): Mutation => ({ op: 'nest', pick, value })),
  );
}

function applyMutations(body: { [key: string]: Fuzz }, mutations: Mutation[]): { [key: string]: Fuzz } {
  const result: { [key: string]: Fuzz } = { ...body };
  for (const m of mutations) {
    const keys = Object.keys(result);
    if (m.op === 'set') {
      result[m.key] = m.value;
    } else if (keys.length > 0) {
      const key = keys[m.pick % keys.length]!;
      if (m.op === 'drop') delete result[key];
      // Bury the hostile value one level down, where only a deep walk would find it.
      else result[key] = { inner: m.value, list: [result[key] ?? null, m.value] };
    }
  }
  return result;
}

/** A body for `endpoint` that starts valid, then loses fields, gains fields, and gets wrong values. */
export function mutatedBody(endpoint: Endpoint): fc.Arbitrary<{ [key: string]: Fuzz }> {
  return fc
    .tuple(validBodies[endpoint], fc.array(mutation(endpoint), { minLength: 0, maxLength: 3 }))
    .map(([body, mutations]) => applyMutations(body, mutations));
}

/** Bytes that are not JSON, or not UTF-8, or JSON in disguise. */
export const rawBodyBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'null',
    'true',
    '0',
    '-0',
    '1e400',
    '"a string"',
    '[]',
    '{',
    '}',
    '{"title":',
    '{"title":"x","scope":"y"',
    '{"title":"x","scope":"y"}}',
    '{"title":"x","scope":"y"} trailing',
    "{'title':'x'}",
    '{"title":"x","title":"y","scope":"z"}',
    '{"title":"\\u0000","scope":"s"}',
    '{"title":"t","scope":"\\ud800"}',
    '{"title":"t","scope":"s","context":{"\\u0000":1}}',
    '{"title":"t","scope":"s","context":"\\udfff\\ud800"}',
    '{"title":"t","scope":"s","priority":1e400}',
    '{"title":"t","scope":"s","priority":-0}',
    '{"title":"t","scope":"s","max_retries":1.0}',
    '{"result":{"a":"\\u0000"}}',
    '{"error":"boom\\u0000"}',
    '{"capabilities":["a\\u0000b"]}',
    '{"status":"cancelled","context":"\\u0000"}',
    'title=x&scope=y',
    '--x\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--x--',
    '\ufeff{"title":"bom","scope":"s"}',
  ).map((s) => Buffer.from(s, 'utf8')),
  // Raw control characters (a NUL byte inside a JSON string is not JSON) and invalid UTF-8.
  fc.constantFrom(
    Buffer.from('{"title":"a\u0000b","scope":"s"}', 'latin1'),
    Buffer.from([0x7b, 0x22, 0x74, 0x69, 0x74, 0x6c, 0x65, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]),
    Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]),
    Buffer.from([0xc0, 0xaf, 0xc3, 0x28]),
  ),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ unit: 'binary', maxLength: 64 }).map((s) => Buffer.from(s, 'utf8')),
);

/** A request body: a mutated valid one (mostly), a hostile value as the whole body, or raw bytes. */
export function bodyFor(endpoint: Endpoint): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { arbitrary: mutatedBody(endpoint).map((b) => Buffer.from(serialize(b), 'utf8')), weight: 6 },
    { arbitrary: validBodies[endpoint].map((b) => Buffer.from(serialize(b), 'utf8')), weight: 1 },
    { arbitrary: nastyValue.map((v) => Buffer.from(serialize(v), 'utf8')), weight: 1 },
    { arbitrary: rawBodyBytes, weight: 2 },
  );
}

export const anyBody: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 2 },
  { arbitrary: fc.constantFrom<Endpoint>('create', 'patch', 'complete', 'fail', 'progress', 'register').chain(bodyFor), weight: 6 },
  { arbitrary: fc.constant(Buffer.alloc(1024 * 1024 + 10, 0x20)), weight: 1 },
);

// ---------------------------------------------------------------------------------------------
// Headers (values as Latin-1 strings: the bytes on the wire)

/** What a client sending UTF-8 puts on the wire, as the Latin-1 string node:http writes byte for byte. */
export const utf8OnTheWire = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

/** Header-safe characters: tab, printable ASCII, and the Latin-1 upper half. */
const headerChar = fc.oneof(
  { arbitrary: fc.integer({ min: 0x20, max: 0x7e }), weight: 8 },
  { arbitrary: fc.integer({ min: 0x80, max: 0xff }), weight: 1 },
  { arbitrary: fc.constant(0x09), weight: 1 },
).map((c) => String.fromCharCode(c));
const headerText = (max: number) => fc.string({ unit: headerChar, maxLength: max });

export const validAgentId = fc.stringMatching(/^[a-z][a-z0-9._-]{0,30}$/).map((s) => `fz-${s}`);

/** X-Agent-ID values an agent's own bug could send; `undefined` leaves the header out. */
export const agentHeader: fc.Arbitrary<string | string[] | undefined> = fc.oneof(
  { arbitrary: validAgentId, weight: 18 },
  { arbitrary: fc.constantFrom<string | string[] | undefined>(undefined, '', ' ', 'a b', 'a\tb', '"quoted"', 'ä', 'x'.repeat(201), 'x'.repeat(200)), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).map(utf8OnTheWire), weight: 1 },
  { arbitrary: fc.integer({ min: 201, max: 8_000 }).map((n) => 'a'.repeat(n)), weight: 1 },
  { arbitrary: headerText(40), weight: 1 },
  { arbitrary: fc.tuple(validAgentId, validAgentId).map(([a, b]) => [a, b]), weight: 1 },
);

export function authorizationHeader(adminToken: string, allowAdmin: boolean): fc.Arbitrary<string | undefined> {
  const wrong = fc.oneof(
    fc.constantFrom(
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Bearer  ',
      `Basic ${Buffer.from(`admin:${adminToken}`).toString('base64')}`,
      `Bearer ${adminToken.toUpperCase()}`,
      `Bearer ${adminToken.slice(0, -1)}`,
      `Bearer ${adminToken}x`,
      `Bearer ${adminToken} extra`,
      `Bearer x${adminToken}`,
      `Token ${adminToken}`,
      adminToken,
      `Bearer ${'A'.repeat(5000)}`,
      `Bearer ${utf8OnTheWire('токен')}`,
    ),
    headerText(60),
    headerText(60).map((t) => `Bearer ${t}`),
  );
  const admin = fc.constantFrom(`Bearer ${adminToken}`, `bearer   ${adminToken}  `, `BEARER\t${adminToken}`);
  const arbitrary = allowAdmin ? fc.oneof({ arbitrary: wrong, weight: 3 }, { arbitrary: admin, weight: 1 }) : wrong;
  // Whatever the generator made, an intruder must never hold the real token.
  return allowAdmin ? arbitrary : arbitrary.filter((h) => h === undefined || /^Bearer\s+(\S+)\s*$/i.exec(h.trim())?.[1] !== adminToken);
}

export const idempotencyKeyHeader: fc.Arbitrary<string | undefined> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 4 },
  { arbitrary: fc.uuid(), weight: 2 },
  { arbitrary: fc.constantFrom('', ' ', 'x'.repeat(200), 'x'.repeat(201), "'; DROP TABLE dispatch_tasks; --", 'k'), weight: 2 },
  { arbitrary: fc.integer({ min: 201, max: 6_000 }).map((n) => 'k'.repeat(n)), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).map(utf8OnTheWire), weight: 1 },
  { arbitrary: headerText(50), weight: 1 },
);

export const contentTypeHeader: fc.Arbitrary<string | undefined> = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16le',
  'APPLICATION/JSON',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/xml',
  '',
  ';;;',
  'application/json; boundary=',
);

export interface FuzzHeaders {
  agent?: string | string[];
  authorization?: string;
  idempotencyKey?: string;
  contentType?: string;
  extra: Record<string, string>;
}

const extraHeaders = fc.dictionary(
  fc.constantFrom('x-request-id', 'accept', 'accept-encoding', 'content-encoding', 'x-forwarded-for', 'x-http-method-override', 'origin', 'cookie', 'expect', 'range'),
  fc.oneof(
    headerText(60),
    fc.constantFrom('gzip', 'br', '*/*', 'application/xml', 'DELETE', '100-continue', 'bytes=0-1', 'a'.repeat(100), '../..', 'null'),
  ),
  { maxKeys: 3 },
);

export function headers(adminToken: string, options: { allowAdmin: boolean; agent?: fc.Arbitrary<string | string[] | undefined> }): fc.Arbitrary<FuzzHeaders> {
  return fc.record({
    agent: options.agent ?? agentHeader,
    authorization: authorizationHeader(adminToken, options.allowAdmin),
    idempotencyKey: idempotencyKeyHeader,
    contentType: contentTypeHeader,
    extra: extraHeaders,
  });
}

/**
 * HTTP cannot carry control characters in a header value (node:http refuses to send them, and a
 * server that got them would refuse the request before any application code ran): they become "?".
 */
export const headerSafe = (value: string) => value.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');

export function toHeaderRecord(h: FuzzHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  // `expect: 100-continue` would make node:http wait for a "continue"; the server answers it,
  // but it is the client library's business, not the API's.
  for (const [k, v] of Object.entries(h.extra)) if (k !== 'expect') out[k] = headerSafe(v);
  if (h.agent !== undefined) out['x-agent-id'] = Array.isArray(h.agent) ? h.agent.map(headerSafe) : headerSafe(h.agent);
  if (h.authorization !== undefined) out.authorization = headerSafe(h.authorization);
  if (h.idempotencyKey !== undefined) out['idempotency-key'] = headerSafe(h.idempotencyKey);
  if (h.contentType !== undefined) out['content-type'] = headerSafe(h.contentType);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Ids in paths and query strings

/** Path segments as sent on the wire: some percent-encoded text, some raw tricks. */
export function idSegment(knownIds: string[]): fc.Arbitrary<string> {
  const uuidLike = fc.uuid().chain((u) =>
    fc.constantFrom(
      u,
      u.toUpperCase(),
      `{${u}}`,
      u.replace(/-/g, ''),
      u.slice(0, -1),
      `${u}0`,
      u.replace(/[0-9a-f]/, 'g'),
      `%20${u}`,
      `${u}%20`,
      `${u}%00`,
      `${u}%2F..`,
      `urn:uuid:${u}`,
    ),
  );
  const fixed = fc.constantFrom(
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '------------------------------------',
    '%2F',
    'a%2Fb',
    '%2e%2e',
    '..',
    '.',
    '%',
    '%ZZ',
    '%00',
    '%C0%AF',
    '%ED%A0%80',
    '%E2%80%AE',
    "'%20OR%20'1'='1",
    '1',
    '-1',
    'null',
    'undefined',
    '*',
    '%25',
    '%2525',
    ';',
    '@',
    '~',
  );
  const encodedText = fc.oneof(nastyString.filter((s) => s.length < 3_000), fc.string({ unit: 'binary', maxLength: 30 })).map((s) => {
    try {
      return encodeURIComponent(s);
    } catch {
      // A lone surrogate cannot be percent-encoded as UTF-8: send its replacement.
      return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'));
    }
  });
  const long = fc.integer({ min: 100, max: 5_000 }).map((n) => 'a'.repeat(n));
  return fc.oneof(
    ...(knownIds.length > 0 ? [{ arbitrary: fc.constantFrom(...knownIds), weight: 4 }] : []),
    { arbitrary: uuidLike, weight: 2 },
    { arbitrary: fixed, weight: 2 },
    { arbitrary: encodedText.filter((s) => s !== ''), weight: 2 },
    { arbitrary: long, weight: 1 },
  );
}

const ROUTES = [
  '/api/v1/tasks',
  '/api/v1/tasks/',
  '/api/v1/tasks/{id}',
  '/api/v1/tasks/{id}/',
  '/api/v1/tasks/{id}/events',
  '/api/v1/tasks/{id}/placement',
  '/api/v1/tasks/{id}/complete',
  '/api/v1/tasks/{id}/fail',
  '/api/v1/tasks/{id}/progress',
  '/api/v1/tasks/{id}/complete/{id}',
  '/api/v1/tasks/{id}/{id}',
  '/api/v1/stats',
  '/api/v1/agents',
  '/api/v1/agents/{agent}',
  '/api/v1/agents/{agent}/drain',
  '/api/v1/agents/{agent}/{id}',
  '/',
  '/api',
  '/api/v1',
  '/api/v1/',
  '/api/v2/tasks',
  '/api/v1//tasks',
  '/API/V1/TASKS',
  '/api/v1/tasks/..%2f..%2fstats',
  '/api/v1/%2e%2e/stats',
  '/health',
  '/metrics',
  '/api/v1/tasks%00',
];

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PURGE', 'LINK'] as const;

/** A path from the route table with ids and agent names filled in (and sometimes a query). */
export function pathArbitrary(knownIds: string[], knownAgents: string[]): fc.Arbitrary<string> {
  const agentSegment = fc.oneof(
    ...(knownAgents.length > 0 ? [{ arbitrary: fc.constantFrom(...knownAgents), weight: 3 }] : []),
    { arbitrary: validAgentId, weight: 2 },
    { arbitrary: idSegment([]), weight: 2 },
  );
  return fc
    .tuple(fc.constantFrom(...ROUTES), fc.array(idSegment(knownIds), { minLength: 2, maxLength: 2 }), agentSegment, fc.option(queryString(), { nil: undefined }))
    .map(([route, ids, agent, query]) => {
      let n = 0;
      const path = route.replace(/\{id\}/g, () => ids[n++ % ids.length]!).replace('{agent}', agent);
      return query === undefined ? path : `${path}?${query}`;
    });
}

/** The API's routes with their methods, and the body each expects (undefined: none). */
const ROUTE_TABLE: [method: string, route: string, body: Endpoint | undefined][] = [
  ['POST', '/api/v1/tasks', 'create'],
  ['GET', '/api/v1/tasks', undefined],
  ['GET', '/api/v1/tasks/{id}', undefined],
  ['GET', '/api/v1/tasks/{id}/events', undefined],
  ['GET', '/api/v1/tasks/{id}/placement', undefined],
  ['PATCH', '/api/v1/tasks/{id}', 'patch'],
  ['POST', '/api/v1/tasks/{id}/complete', 'complete'],
  ['POST', '/api/v1/tasks/{id}/fail', 'fail'],
  ['POST', '/api/v1/tasks/{id}/progress', 'progress'],
  ['GET', '/api/v1/stats', undefined],
  ['GET', '/api/v1/agents', undefined],
  ['GET', '/api/v1/agents/{agent}', undefined],
  ['PUT', '/api/v1/agents/{agent}', 'register'],
  ['POST', '/api/v1/agents/{agent}/drain', undefined],
  ['DELETE', '/api/v1/agents/{agent}/drain', undefined],
];

export interface RequestShape {
  method: string;
  path: string;
  body: Buffer | undefined;
}

/**
 * Mostly a real route with its own method and a (mutated) body of its own kind, so requests get
 * past routing and reach validation, authorization and SQL; sometimes any method on any path.
 */
export function requestShape(knownIds: string[], knownAgents: string[]): fc.Arbitrary<RequestShape> {
  const id = idSegment(knownIds.length > 0 ? [...knownIds, ...knownIds] : knownIds);
  const agent = fc.oneof(
    ...(knownAgents.length > 0 ? [{ arbitrary: fc.constantFrom(...knownAgents), weight: 4 }] : []),
    { arbitrary: validAgentId, weight: 2 },
    { arbitrary: idSegment([]), weight: 1 },
  );
  const routed = fc.constantFrom(...ROUTE_TABLE).chain(([method, route, endpoint]) =>
    fc.record({
      method: fc.constant(method),
      path: fc
        .tuple(id, agent, fc.option(queryString(), { nil: undefined, freq: 4 }))
        .map(([i, a, q]) => `${route.replace('{id}', i).replace('{agent}', a)}${q === undefined ? '' : `?${q}`}`),
      body: endpoint ? fc.option(bodyFor(endpoint), { nil: undefined, freq: 8 }) : anyBody,
    }),
  );
  const anything = fc.record({ method: fc.constantFrom(...METHODS), path: pathArbitrary(knownIds, knownAgents), body: anyBody });
  return fc.oneof({ arbitrary: routed, weight: 3 }, { arbitrary: anything, weight: 1 });
}

function encodeQueryPart(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'));
  }
}

/** Cursors a client could forge: base64url of JSON that is almost what the API hands out. */
export const forgedCursor: fc.Arbitrary<string> = fc
  .oneof(
    fc.tuple(
      fc.constantFrom('2024-01-01T00:00:00.000Z', '-271821-04-20T00:00:00.000Z', '+275760-09-13T00:00:00.000Z', '0000-01-01', 'not a date', '1', ''),
      fc.constantFrom('------------------------------------', '00000000-0000-0000-0000-000000000000', 'gggggggg-gggg-gggg-gggg-gggggggggggg', 'x', ''),
    ).map((pair) => JSON.stringify(pair)),
    fc.constantFrom('[]', '{}', 'null', '"x"', '[1,2]', '[null,null]', '[1e400,"a"]', '[', ''),
    nastyString.filter((s) => s.length < 1_000).map((s) => JSON.stringify([s, s])),
  )
  .map((text) => Buffer.from(text, 'utf8').toString('base64url'));

const QUERY_KEYS = ['status', 'requester', 'assignee', 'scope', 'parent_id', 'limit', 'cursor', 'unknown', 'STATUS', 'limit[]', 'status[0]', '', '__proto__', 'constructor'];
const queryValue = fc.oneof(
  fc.constantFrom('pending', 'assigned', 'running', 'completed', 'failed', 'cancelled', 'timeout', 'PENDING', 'bogus', '1', '0', '50', '500', '501', '-1', '1.5', '1e3', '99999999999999999999', '0x10', ' 5', 'NaN', ''),
  forgedCursor,
  fc.uuid(),
  nastyString.filter((s) => s.length < 2_000),
);

/** A query string: known and unknown keys, repeats, bad values, and broken percent-encoding. */
export function queryString(): fc.Arbitrary<string> {
  const pair = fc.oneof(
    { arbitrary: fc.tuple(fc.constantFrom(...QUERY_KEYS), queryValue).map(([k, v]) => `${encodeQueryPart(k)}=${encodeQueryPart(v)}`), weight: 8 },
    { arbitrary: fc.constantFrom('status', 'limit', '=', '&', 'limit=%', 'scope=%ZZ', 'scope=%00', 'scope=%ED%A0%80', 'requester=%C0%AF', 'status=pending%00', 'cursor=%2B%2F%3D'), weight: 2 },
  );
  return fc.array(pair, { minLength: 0, maxLength: 5 }).map((pairs) => pairs.join('&'));
}
