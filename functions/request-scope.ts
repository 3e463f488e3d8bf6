// What one request hands down to everything it causes: the logger its lines go
// to (carrying the trace ids) and the span its Kubernetes API calls continue.
// Passed as an argument, not kept in async-local state, so that what a line
// or a call belongs to can be read from the code.
import { randomBytes } from "node:crypto";
import type { Logger } from "./logger.ts";
import { childSpan, incomingTrace, type Span, type TraceCarriers } from "./trace-context.ts";

export interface RequestScope {
  readonly logger: Logger;
  /** This function's span; undefined when the request carried no valid trace context. */
  readonly span: Span | undefined;
}

/** A span id: 8 random bytes as hex, never all zero (W3C: an invalid id). */
export function newSpanId(): string {
  for (;;) {
    const id = randomBytes(8).toString("hex");
    if (id !== "0000000000000000") return id;
  }
}

/** The scope of one request: with a valid incoming trace context, a child span and a logger that names it. */
export function scopeFor(logger: Logger, carriers: TraceCarriers, spanId: () => string = newSpanId): RequestScope {
  const parent = incomingTrace(carriers);
  if (parent === undefined) return { logger, span: undefined };
  const span = childSpan(parent, spanId());
  return { logger: logger.child({ trace_id: span.traceId, span_id: span.spanId }), span };
}
