// No vitest imports here: simulated-agents.ts (also used by bench/) checks its answers with this.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { openApiJson } from '../../src/routes.js';

/**
 * Every answer the test suite receives is checked against openapi.json (as the code generates
 * it; CI checks the committed file is the same): the test clients (http.ts, simulated-agents.ts,
 * the property tests' raw client) call `responseProblem` on each response and fail on a problem.
 * So the document cannot drift from the behaviour: an undocumented status, a missing or extra
 * field, a wrong type or media type fails the test that received it.
 */

type Json = Record<string, any>;

export const openApiDocument: Json = JSON.parse(openApiJson());

const DOCUMENT_ID = 'dispatch-openapi';
const ajv = new Ajv2020({ strict: false, allErrors: true });
// ajv-formats is CommonJS: its default export is the plugin function under NodeNext's interop.
const addFormats = addFormatsPlugin as unknown as { default: (ajv: Ajv2020) => void };
addFormats.default(ajv);
ajv.addSchema(openApiDocument, DOCUMENT_ID);

const pointer = (...segments: string[]) => segments.map((s) => s.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

interface Route {
  /** Which listener serves it: the ops routes' path items name the ops server. */
  listener: Listener;
  method: string;
  path: string;
  pattern: RegExp;
  /** Fewer parameters first: a literal segment wins over a parameter, as in Hono's router. */
  params: number;
}

const routes: Route[] = Object.entries(openApiDocument.paths as Json)
  .flatMap(([path, item]) =>
    Object.keys(item)
      .filter((key) => ['get', 'put', 'post', 'patch', 'delete'].includes(key))
      .map((method) => ({
        listener: (item.servers ? 'ops' : 'api') as Listener,
        method,
        path,
        pattern: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
        params: (path.match(/\{/g) ?? []).length,
      })),
  )
  .sort((a, b) => a.params - b.params);

const validators = new Map<string, ValidateFunction>();
function validatorAt(ref: string): ValidateFunction {
  let validate = validators.get(ref);
  if (!validate) {
    validate = ajv.compile({ $ref: `${DOCUMENT_ID}#${ref}` });
    validators.set(ref, validate);
  }
  return validate;
}

/** Statuses any /api/v1 request can get before it reaches a route (src/http/api.ts) or when none matches. */
const UNROUTED_STATUSES = new Set([400, 401, 403, 404, 413, 415, 429, 500, 503]);

/**
 * What the HTTP server answers for a request Node's parser refuses (src/http/server.ts
 * answerClientError), before any route: malformed (400), too slow (408), headers too large (431).
 * openapi.json says so in its description rather than on every operation.
 */
const SERVER_STATUSES = new Set([400, 408, 431]);

type Listener = 'api' | 'ops';

function describeBody(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return text === undefined ? '(none)' : text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

export interface ReceivedResponse {
  method: string;
  /** The request URL (absolute) or path. */
  url: string;
  /** The listener that answered: the API's (default) or the ops one. */
  listener?: Listener;
  status: number;
  contentType: string | null;
  /** The parsed JSON body, or the text when it is not JSON; null or '' when empty. */
  body: unknown;
}

/** Says what is wrong when an answer is not what openapi.json documents; undefined when it is. */
export function responseProblem({ method, url, status, contentType, body, listener = 'api' }: ReceivedResponse): string | undefined {
  // Normalised as a WHATWG URL (`/./` and `/../` resolved), as @hono/node-server does before routing.
  const path = new URL(url, 'http://localhost').pathname;
  const verb = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
  const where = `${method.toUpperCase()} ${path} -> ${status}`;
  const route = routes.find((r) => r.listener === listener && r.method === verb && r.pattern.test(path));
  const hasBody = !(body === null || body === undefined || body === '');
  if (!route) {
    // No route: what the middleware or the not-found handler answers, always in the error shape.
    if (!UNROUTED_STATUSES.has(status)) return `${where}: no documented route, yet status ${status}`;
    return checkBody(where, '/components/schemas/Error', body, contentType, 'application/json');
  }
  const operationRef = `/paths/${pointer(route.path, route.method)}`;
  const operation = (openApiDocument.paths as Json)[route.path][route.method] as Json;
  let response = operation.responses[String(status)] as Json | undefined;
  let responseRef = `${operationRef}/responses/${status}`;
  if (!response && SERVER_STATUSES.has(status)) return checkBody(where, '/components/schemas/Error', body, contentType, 'application/json');
  if (!response) return `${where}: status ${status} is not documented for ${route.method.toUpperCase()} ${route.path} (operation ${operation.operationId})`;
  if (typeof response.$ref === 'string') {
    responseRef = response.$ref.slice(1);
    response = openApiDocument.components.responses[response.$ref.split('/').at(-1)!] as Json;
  }
  if (method.toLowerCase() === 'head') return undefined;
  const content = response.content as Json | undefined;
  if (!content) return hasBody ? `${where}: documented without a body, yet answered ${describeBody(body)}` : undefined;
  const [mediaType] = Object.keys(content) as [string];
  return checkBody(where, `${responseRef}/content/${pointer(mediaType)}/schema`, body, contentType, mediaType);
}

function checkBody(where: string, schemaRef: string, body: unknown, contentType: string | null, mediaType: string): string | undefined {
  const received = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (received !== mediaType) return `${where}: content-type "${contentType}" where the document says ${mediaType}; body ${describeBody(body)}`;
  const validate = validatorAt(schemaRef);
  if (validate(body)) return undefined;
  return `${where}: the body does not match openapi.json (${schemaRef}): ${ajv.errorsText(validate.errors?.slice(0, 5), { separator: '; ' })}; body ${describeBody(body)}`;
}

/** An answer that is not what openapi.json documents: a failed test, never a reason to retry. */
export class UndocumentedResponse extends Error {
  override name = 'UndocumentedResponse';
}

/** Throws with the problem when the answer is not what openapi.json documents. */
export function assertDocumentedResponse(response: ReceivedResponse): void {
  const problem = responseProblem(response);
  if (problem) throw new UndocumentedResponse(`response not as documented in openapi.json: ${problem}`);
}
