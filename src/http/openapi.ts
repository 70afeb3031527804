import { z } from 'zod';
import { errorJsonSchema, type ErrorCode } from '../domain/errors.js';
import { STATUS_BY_CODE } from './errors.js';

/**
 * The API's OpenAPI 3.1 document, built from the zod schemas the routes validate with and the
 * schemas their answers are typed by. Each router has a declaration file next to it
 * (`task.routes.ts` -> `task.openapi.ts`) listing its operations; src/routes.ts registers them
 * beside the routers, and test/integration/openapi.test.ts fails when a mounted route is
 * not declared or a declared one is not mounted. Zod's own `z.toJSONSchema` does the conversion:
 * OpenAPI 3.1 schemas are JSON Schema 2020-12, zod's default target, so no adapter library and
 * no change to how routes read and validate their input (task creation validates raw body text
 * inside the domain service it shares with NATS, which a route-wrapping library cannot see).
 */

export type HttpMethod = 'get' | 'put' | 'post' | 'patch' | 'delete';

export interface HeaderDeclaration {
  description: string;
  schema?: z.ZodType;
}

export interface ResponseDeclaration {
  description: string;
  /** The body, as `application/json` unless `mediaType` says otherwise; none for a body-less answer. */
  body?: z.ZodType;
  mediaType?: string;
  headers?: Record<string, HeaderDeclaration>;
}

/**
 * Where a route is served and who may call it. `api`: port 8600 under /api/v1, behind the
 * caller's authentication, the body limit and the rate limit. `public`: port 8600, no credential
 * (this document and its page). `ops`: the ops listener (port 8601), no credential.
 */
export type Surface = 'api' | 'public' | 'ops';

export interface ApiOperation {
  /** Stable and meaningful: the typed client's method name (createTask, getTask, ...). */
  operationId: string;
  method: HttpMethod;
  /** As OpenAPI writes it (`/api/v1/tasks/{id}`), with the parameter names the route uses. */
  path: string;
  summary: string;
  /** Who may call it and what they see (roles, object-level access). */
  access?: string;
  description?: string;
  surface?: Surface;
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** Request headers the route reads (beyond authentication). */
  headers?: z.ZodObject;
  /** The JSON request body, as validated; an empty body counts as `{}` (src/http/body.ts). */
  body?: z.ZodType;
  /** Successful answers by status. */
  responses: Record<number, ResponseDeclaration>;
  /**
   * Error statuses the route answers itself beyond those implied: 400 for parameters or a body,
   * 415 for a body, and on the `api` surface 401, 403, 413, 429, 500 and 503 (authentication,
   * body limit, rate limit, failures). Typically 404 and 409.
   */
  errors?: number[];
}

/** One router's declarations: its operations under one tag (a section of the document). */
export interface ApiDeclarations {
  tag: { name: string; description: string };
  operations: ApiOperation[];
}

/** What the middleware of the `api` surface can answer on any route (src/http/api.ts). */
const MIDDLEWARE_ERRORS = [401, 403, 413, 429, 500, 503];

const ERROR_RESPONSES: Record<number, { name: string; description: string }> = {
  400: { name: 'BadRequest', description: 'The body is not JSON, or a field, parameter or header is invalid: `details` names each one.' },
  401: { name: 'Unauthorized', description: 'No credential, or not a valid one (unknown, revoked or expired); in header mode, no X-Agent-ID.' },
  403: { name: 'Forbidden', description: "The credential's role or scopes do not allow this, or X-Agent-ID names another agent than the credential's." },
  404: { name: 'NotFound', description: 'No such object, or one the caller may not see (never told apart).' },
  409: { name: 'Conflict', description: '`stale_attempt`: the call carries an earlier attempt than the current one; `conflict`: the object is not in a state that allows this.' },
  413: { name: 'PayloadTooLarge', description: 'The body exceeds server.body_limit_bytes (1 MiB by default).' },
  415: { name: 'UnsupportedMediaType', description: 'A body not sent as `Content-Type: application/json`.' },
  429: { name: 'RateLimited', description: 'Over the per-caller rate limit; retry after `Retry-After` seconds.' },
  500: { name: 'InternalError', description: 'An unexpected failure; the log line carries the X-Request-ID of the answer.' },
  503: { name: 'Unavailable', description: 'The database is unreachable; retry after `Retry-After` seconds.' },
};

const RETRY_AFTER = { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 0 } };

type JsonSchema = Record<string, unknown>;

/** Converts zod schemas to JSON Schema, gathering the named ones (`.meta({ id })`) as components. */
class SchemaConverter {
  readonly components: Record<string, JsonSchema> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
    delete json.$schema;
    const defs = (json.$defs ?? {}) as Record<string, JsonSchema>;
    delete json.$defs;
    for (const [id, def] of Object.entries(defs)) {
      const rewritten = rewriteRefs(def) as JsonSchema;
      const known = this.components[id];
      if (known && JSON.stringify(known) !== JSON.stringify(rewritten)) {
        // A named schema must read the same everywhere (e.g. one with defaults, used as input and output).
        throw new Error(`schema "${id}" converts differently in two places; name only schemas whose input and output agree`);
      }
      this.components[id] = rewritten;
    }
    return rewriteRefs(json) as JsonSchema;
  }
}

function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) =>
      key === '$ref' && typeof inner === 'string' ? [key, inner.replace(/^#\/\$defs\//, '#/components/schemas/')] : [key, rewriteRefs(inner)],
    ),
  );
}

/**
 * Parameters from a zod object: one per key, required unless optional or defaulted. A query
 * value parsed from digits into a number (`limit`) is documented as the integer it becomes.
 */
function parameters(converter: SchemaConverter, where: 'path' | 'query' | 'header', schema: z.ZodObject): JsonSchema[] {
  const input = converter.convert(schema, 'input');
  const output = converter.convert(schema, 'output');
  const properties = (input.properties ?? {}) as Record<string, JsonSchema>;
  const outputProperties = (output.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((input.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const parsedNumber = property.type === 'string' && property.pattern === '^\\d+$' && outputProperties[name]?.type === 'integer';
    const { description, ...rest } = parsedNumber ? outputProperties[name]! : property;
    return {
      name,
      in: where,
      ...(description ? { description } : {}),
      required: where === 'path' || required.has(name),
      schema: rest,
    };
  });
}

function errorResponseName(status: number): string {
  const known = ERROR_RESPONSES[status];
  if (!known) throw new Error(`no error response is defined for status ${status}`);
  return known.name;
}

function errorResponses(): Record<string, unknown> {
  const codesByStatus = new Map<number, ErrorCode[]>();
  for (const [code, status] of Object.entries(STATUS_BY_CODE) as [ErrorCode, number][]) {
    codesByStatus.set(status, [...(codesByStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    Object.entries(ERROR_RESPONSES).map(([status, { name, description }]) => {
      const codes = codesByStatus.get(Number(status)) ?? [];
      const schema = {
        allOf: [
          { $ref: '#/components/schemas/Error' },
          { type: 'object', properties: { error: { type: 'object', properties: { code: { enum: codes } } } } },
        ],
      };
      const retry = status === '429' || status === '503' ? { headers: { 'Retry-After': RETRY_AFTER } } : {};
      return [name, { description: `${description} Codes: ${codes.map((c) => `\`${c}\``).join(', ')}.`, ...retry, content: { 'application/json': { schema } } }];
    }),
  );
}

function operationObject(converter: SchemaConverter, tag: string, op: ApiOperation): JsonSchema {
  const surface = op.surface ?? 'api';
  const params = [
    ...(op.params ? parameters(converter, 'path', op.params) : []),
    ...(op.query ? parameters(converter, 'query', op.query) : []),
    ...(op.headers ? parameters(converter, 'header', op.headers) : []),
  ];
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(op.responses)) {
    const headers = response.headers
      ? Object.fromEntries(
          Object.entries(response.headers).map(([name, h]) => [name, { description: h.description, schema: h.schema ? converter.convert(h.schema, 'output') : { type: 'string' } }]),
        )
      : undefined;
    responses[status] = {
      description: response.description,
      ...(headers ? { headers } : {}),
      ...(response.body ? { content: { [response.mediaType ?? 'application/json']: { schema: converter.convert(response.body, 'output') } } } : {}),
    };
  }
  const errors = new Set([
    ...(op.errors ?? []),
    ...(params.length > 0 || op.body ? [400] : []),
    ...(op.body ? [400, 415] : []),
    ...(surface === 'api' ? MIDDLEWARE_ERRORS : []),
  ]);
  for (const status of [...errors].sort((a, b) => a - b)) responses[String(status)] = { $ref: `#/components/responses/${errorResponseName(status)}` };
  const description = [op.access ? `**Who:** ${op.access}` : undefined, op.description].filter(Boolean).join('\n\n');
  return {
    operationId: op.operationId,
    tags: [tag],
    summary: op.summary,
    ...(description ? { description } : {}),
    ...(surface === 'api' ? {} : { security: [] }),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(op.body
      ? { requestBody: { required: !op.body.safeParse({}).success, content: { 'application/json': { schema: converter.convert(op.body, 'input') } } } }
      : {}),
    responses,
  };
}

const OPS_SERVERS = [
  {
    url: 'http://{host}:{port}',
    description: 'The ops listener (server.metrics_port), for orchestrators and scrapers.',
    variables: { host: { default: 'localhost' }, port: { default: '8601' } },
  },
];

const INFO_DESCRIPTION = `The task broker of the agent swarm: agents ask for work, Dispatch assigns it and tracks it to the end.

**Authentication.** In token mode (the default unless Dispatch listens on loopback only) every /api/v1 call carries \`Authorization: Bearer <token>\`: a credential issued by an admin, or the admin token; an \`X-Agent-ID\` sent with it must name the credential's agent. In header mode (a trusted network) \`X-Agent-ID\` names the caller, taken at its word; admins add the admin token as a bearer token. See docs/SECURITY.md.

**Errors** always have the shape \`Error\`: \`{"error": {"code", "message", "details": [{"field", "message"}]}}\`. Every answer carries \`X-Request-ID\`. Besides the statuses each operation lists, the HTTP server answers any request it cannot parse with 400, one whose request line and headers exceed 16 KiB with 431 and one that does not arrive in time with 408, in the same shape, before any route.

**Attempts.** Each assignment of a task is a new attempt (its lease): progress, complete and fail carry the attempt they were given, and an earlier one gets 409 \`stale_attempt\`.`;

/** Builds the whole document; deterministic, so the committed openapi.json can be compared with it. */
export function buildOpenApiDocument(declarations: ApiDeclarations[], version: string): JsonSchema {
  const converter = new SchemaConverter();
  converter.convert(errorJsonSchema, 'output');
  const paths: Record<string, Record<string, unknown>> = {};
  const seen = new Set<string>();
  for (const { tag, operations } of declarations) {
    for (const op of operations) {
      if (seen.has(op.operationId)) throw new Error(`operationId ${op.operationId} is declared twice`);
      seen.add(op.operationId);
      const item = (paths[op.path] ??= {});
      if (item[op.method]) throw new Error(`${op.method.toUpperCase()} ${op.path} is declared twice`);
      if ((op.surface ?? 'api') === 'ops') item.servers = OPS_SERVERS;
      item[op.method] = operationObject(converter, tag.name, op);
    }
  }
  const sorted = (record: Record<string, unknown>) => Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
  return {
    openapi: '3.1.0',
    info: { title: 'Dispatch', version, description: INFO_DESCRIPTION },
    servers: [{ url: '/', description: 'The API listener (server.port, 8600 by default), where this document is served.' }],
    tags: declarations.map(({ tag }) => tag).filter((tag, i, all) => all.findIndex((t) => t.name === tag.name) === i),
    security: [{ bearerAuth: [] }, { agentId: [] }, { bearerAuth: [], agentId: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'Token mode: a credential (POST /api/v1/agents/{id}/credentials) or the admin token (server.admin_token). Header mode: the admin token, for admin calls.',
        },
        agentId: {
          type: 'apiKey',
          in: 'header',
          name: 'X-Agent-ID',
          description: 'Header mode only (DISPATCH_AUTH_MODE=header; the default on loopback): the calling agent, taken at its word. In token mode, optional, and must name the credential\'s agent.',
        },
      },
      responses: errorResponses(),
      schemas: sorted(converter.components),
    },
  };
}
