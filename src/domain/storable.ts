/**
 * What PostgreSQL will take. `text` and `jsonb` refuse U+0000 (errors 22021 and 22P05); `jsonb`
 * refuses an unpaired UTF-16 surrogate, which a JavaScript string can hold (from a "\ud800" JSON
 * escape) but UTF-8 cannot encode; and deep nesting overflows JSON.stringify (RangeError at a few
 * thousand levels) before it reaches PostgreSQL's own parser limit. Input is checked once, where
 * it enters, so such values are a 400 naming the field instead of a 500 from the INSERT.
 */

/** Deeper than any real context or result; far below where JSON.stringify or PostgreSQL give up. */
export const MAX_JSON_DEPTH = 100;

export interface UnstorableValue {
  field: string;
  message: string;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why PostgreSQL would refuse this string, or undefined when it would store it. */
export function unstorableText(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain NUL characters (\\u0000)';
  if (LONE_SURROGATE.test(value)) return 'must be valid Unicode (no unpaired surrogates)';
  return undefined;
}

/** Field names stay readable in error details even when a key is the hostile part. */
const segment = (key: string) => (key.length > 64 ? `${key.slice(0, 64)}…` : key);

/**
 * The first string, key or nesting level in a parsed JSON value that PostgreSQL (or the JSON
 * writer on the way there) would refuse. Walks without recursion: the value may be nested far
 * deeper than the call stack.
 */
export function findUnstorable(value: unknown, maxDepth = MAX_JSON_DEPTH): UnstorableValue | undefined {
  const pending: { value: unknown; path: string[] }[] = [{ value, path: [] }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value: item, path } = next;
    const field = path.join('.') || '(body)';
    if (typeof item === 'string') {
      const problem = unstorableText(item);
      if (problem) return { field, message: problem };
      continue;
    }
    if (typeof item !== 'object' || item === null) continue;
    if (path.length >= maxDepth) {
      return { field: path[0] ?? '(body)', message: `JSON nested more than ${maxDepth} levels deep` };
    }
    // Numbers, booleans and nulls cannot be wrong: only strings and containers are queued.
    const worthVisiting = (child: unknown) => typeof child === 'string' || (typeof child === 'object' && child !== null);
    if (Array.isArray(item)) {
      item.forEach((child, index) => {
        if (worthVisiting(child)) pending.push({ value: child, path: [...path, String(index)] });
      });
      continue;
    }
    for (const [key, child] of Object.entries(item)) {
      const childPath = [...path, segment(key)];
      const problem = unstorableText(key);
      if (problem) return { field: childPath.join('.'), message: `key ${problem}` };
      if (worthVisiting(child)) pending.push({ value: child, path: childPath });
    }
  }
  return undefined;
}
