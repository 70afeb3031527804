/**
 * Deterministic randomness for the chaos plan: the same seed gives the same tasks and the same
 * agent behaviour per (task, attempt), whatever the timing of the run, so a failing run can be
 * replayed with `--seed`.
 */

/** 32-bit FNV-1a over the parts, then a murmur3 finaliser: a well-mixed hash of small inputs. */
export function hash32(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const text = `${part}|`;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A number in [0, 1) drawn from the parts. */
export function unit(...parts: (string | number)[]): number {
  return hash32(...parts) / 2 ** 32;
}

/** An integer in [min, max], drawn from the parts. */
export function between(min: number, max: number, ...parts: (string | number)[]): number {
  return min + Math.floor(unit(...parts) * (max - min + 1));
}

/** Picks a key of `weights` with probability proportional to its weight. */
export function weighted<K extends string>(weights: Record<K, number>, ...parts: (string | number)[]): K {
  const entries = Object.entries(weights) as [K, number][];
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  let x = unit(...parts) * total;
  for (const [key, w] of entries) {
    if (x < w) return key;
    x -= w;
  }
  return entries[entries.length - 1]![0];
}
