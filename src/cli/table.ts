/** A value as one table cell: lists joined, null as "-", nested JSON compact, long text cut. */
export function cell(value: unknown, width = 60): string {
  let text: string;
  if (value === null || value === undefined || value === '') text = '-';
  else if (Array.isArray(value) && value.every((v) => typeof v !== 'object')) text = value.join(',') || '-';
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  text = text.replace(/\s+/g, ' ');
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/** Rows as aligned columns under upper-case headers, the way `ps` or `kubectl get` print them. */
export function table<T>(rows: readonly T[], columns: Record<string, (row: T) => unknown>): string {
  const headers = Object.keys(columns);
  const cells = rows.map((row) => Object.values(columns).map((pick) => cell(pick(row))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)].join('\n');
}

/** One object as "key: value" lines, keys aligned. */
export function record(object: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(object).map((k) => k.length));
  return Object.entries(object)
    .map(([key, value]) => `${`${key}:`.padEnd(width + 1)} ${typeof value === 'object' && value !== null && !Array.isArray(value) ? JSON.stringify(value) : cell(value, 10_000)}`)
    .join('\n');
}
