import type { Logger } from 'pino';
import { parseTraceparent } from './trace-context.js';

/**
 * Dispatch's spans for traced tasks (tasks created with a sampled `traceparent`), exported over
 * OTLP when an endpoint is configured. Each span is made by the replica that did the work, after
 * the change committed: create (the request), assign (from creation to assignment: the wait in
 * the queue), and finish (one attempt, from assignment to completion or failure). They are
 * children of the caller's span, so the swarm's trace shows where its task spent its time.
 *
 * With no endpoint the tracer is `NO_TRACING`: the exporter module is never loaded and each hook
 * is one property check.
 */

export interface TracedTask {
  id: string;
  scope: string;
  traceparent: string | null;
}

export interface FinishedAttempt extends TracedTask {
  status: string;
  assignee: string | null;
  attempt: number;
  assigned_at: Date | null;
  completed_at: Date | null;
}

export interface AssignedAttempt extends TracedTask {
  assignee: string;
  attempt: number;
  created_at: Date;
  assigned_at: Date;
}

export interface SpanRecord {
  traceId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server. */
  kind: 1 | 2;
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number>;
  error: boolean;
}

export interface Tracer {
  readonly enabled: boolean;
  created(task: TracedTask, requestStartedMs: number): void;
  assigned(tasks: readonly AssignedAttempt[]): void;
  finished(task: FinishedAttempt): void;
  stop(): Promise<void>;
}

export const NO_TRACING: Tracer = {
  enabled: false,
  created: () => undefined,
  assigned: () => undefined,
  finished: () => undefined,
  stop: async () => undefined,
};

export interface TracingConfig {
  otlp_endpoint: string;
  otlp_headers: string[];
  service_name: string;
}

/** The tracer the config asks for: NO_TRACING unless an OTLP endpoint is set. */
export async function createTracer(config: TracingConfig, logger: Logger, instance: string): Promise<Tracer> {
  if (config.otlp_endpoint === '') return NO_TRACING;
  const { OtlpExporter } = await import('./otlp-exporter.js');
  const exporter = new OtlpExporter({
    endpoint: config.otlp_endpoint,
    headers: parseHeaders(config.otlp_headers),
    resource: { 'service.name': config.service_name, 'service.instance.id': instance },
    logger,
  });
  return spanTracer((span) => exporter.add(span), () => exporter.stop());
}

/** `key=value` pairs, as OTEL_EXPORTER_OTLP_HEADERS writes them (e.g. an API key for the collector). */
function parseHeaders(pairs: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at > 0) headers[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return headers;
}

/** Turns the task hooks into span records for `emit`. */
export function spanTracer(emit: (span: SpanRecord) => void, stop: () => Promise<void>): Tracer {
  const traced = (task: TracedTask) => {
    const parent = task.traceparent ? parseTraceparent(task.traceparent) : null;
    return parent?.sampled ? parent : null;
  };
  return {
    enabled: true,
    created(task, requestStartedMs) {
      const parent = traced(task);
      if (!parent) return;
      emit({
        traceId: parent.traceId,
        parentSpanId: parent.spanId,
        name: 'dispatch create task',
        kind: 2,
        startMs: requestStartedMs,
        endMs: Date.now(),
        attributes: { 'dispatch.task.id': task.id, 'dispatch.task.scope': task.scope },
        error: false,
      });
    },
    assigned(tasks) {
      for (const task of tasks) {
        const parent = traced(task);
        if (!parent) continue;
        emit({
          traceId: parent.traceId,
          parentSpanId: parent.spanId,
          name: 'dispatch assign task',
          kind: 1,
          startMs: task.created_at.getTime(),
          endMs: task.assigned_at.getTime(),
          attributes: { 'dispatch.task.id': task.id, 'dispatch.task.scope': task.scope, 'dispatch.assignee': task.assignee, 'dispatch.attempt': task.attempt },
          error: false,
        });
      }
    },
    finished(task) {
      const parent = traced(task);
      if (!parent || !task.assigned_at || !task.completed_at) return;
      emit({
        traceId: parent.traceId,
        parentSpanId: parent.spanId,
        name: `dispatch task ${task.status}`,
        kind: 1,
        startMs: task.assigned_at.getTime(),
        endMs: task.completed_at.getTime(),
        attributes: {
          'dispatch.task.id': task.id,
          'dispatch.task.scope': task.scope,
          'dispatch.assignee': task.assignee ?? '',
          'dispatch.attempt': task.attempt,
          'dispatch.outcome': task.status,
        },
        error: task.status !== 'completed',
      });
    },
    stop,
  };
}
