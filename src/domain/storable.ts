/**
 * What PostgreSQL will take. `text` and `jsonb` refuse U+0000 (errors 22021 and 22P05); `jsonb`
 * refuses an unpaired UTF-16 surrogate, which a JavaScript string can hold (from a "\ud800" JSON
 * escape) but UTF-8 cannot encode; and deep nesting overflows JSON.stringify (RangeError at a few
 * thousand levels) before it reaches PostgreSQL's own parser limit. Input is checked once, where
 * it enters, so such values are a 400 naming the field instead of a 500 from the INSERT.
 */

/** Deeper than any real context or result; far below where JSON.stringify or PostgreSQL give up. */
export const MAX_JSON_DEPTH = 64;
/** More values (strings, numbers, containers...) than any real context or result holds. */
export const MAX_JSON_NODES = 100_000;

export interface UnstorableValue {
  field: string;
  message: string;
}

// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for.
const SUSPECT = /[\u0000\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why PostgreSQL would refuse this string, or undefined when it would store it. */
export function unstorableText(value: string): string | undefined {
  // One cheap scan settles almost every string; the exact checks run only on a suspect one.
  if (!SUSPECT.test(value)) return undefined;
  if (value.includes('\u0000')) return 'must not contain NUL characters (\\u0000)';
  if (LONE_SURROGATE.test(value)) return 'must be valid Unicode (no unpaired surrogates)';
  return undefined;
}

/** Field names stay readable in error details even when a key is the hostile part. */
const segment = (key: string) => (key.length > 64 ? `${key.slice(0, 64)}…` : key);

/** A value still to look at, linked to its parent: the path is spelled out only for an error. */
interface Visit {
  value: unknown;
  key: string;
  parent: Visit | undefined;
  depth: number;
}

/** The top-level field a value sits in: a path 64 levels deep would bury the answer. */
function topFieldOf(visit: Visit): string {
  let at = visit;
  while (at.parent?.parent !== undefined) at = at.parent;
  return at.parent === undefined ? '(body)' : segment(at.key);
}

function fieldOf(visit: Visit | undefined): string {
  const keys: string[] = [];
  for (let at = visit; at?.parent !== undefined; at = at.parent) keys.push(segment(at.key));
  return keys.reverse().join('.') || '(body)';
}

/**
 * The first string, key, nesting level or value past the count limit in a parsed JSON value that
 * PostgreSQL (or the JSON writer on the way there) would refuse, or that costs more than a task
 * may. Linear in the size of the value: each value is visited once, without recursion (the value
 * may be nested far deeper than the call stack), and no path is built unless one is reported.
 */
export function findUnstorable(value: unknown, maxDepth = MAX_JSON_DEPTH, maxNodes = MAX_JSON_NODES): UnstorableValue | undefined {
  const pending: Visit[] = [{ value, key: '', parent: undefined, depth: 0 }];
  let nodes = 0;
  for (let visit = pending.pop(); visit !== undefined; visit = pending.pop()) {
    const item = visit.value;
    if (typeof item === 'string') {
      const problem = unstorableText(item);
      if (problem) return { field: fieldOf(visit), message: problem };
      continue;
    }
    if (typeof item !== 'object' || item === null) continue;
    if (visit.depth >= maxDepth) {
      return { field: topFieldOf(visit), message: `JSON nested more than ${maxDepth} levels deep (the limit)` };
    }
    const depth = visit.depth + 1;
    const children = Array.isArray(item) ? item.entries() : Object.entries(item);
    for (const [key, child] of children) {
      nodes += 1;
      if (nodes > maxNodes) return { field: topFieldOf(visit), message: `JSON holds more than ${maxNodes} values (the limit)` };
      if (typeof key === 'string') {
        const problem = unstorableText(key);
        if (problem) return { field: fieldOf({ value: child, key, parent: visit, depth }), message: `key ${problem}` };
      }
      // Numbers, booleans and nulls cannot be wrong: only strings and containers are queued.
      if (typeof child === 'string' || (typeof child === 'object' && child !== null)) {
        pending.push({ value: child, key: String(key), parent: visit, depth });
      }
    }
  }
  return undefined;
}
