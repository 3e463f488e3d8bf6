// W3C Trace Context (https://www.w3.org/TR/trace-context/), by hand: reading an
// incoming traceparent/tracestate, and the context of this function's own span
// to send on (the reply CloudEvent, the Kubernetes API calls it causes). No
// tracing backend is involved: the trace is only continued, so that whoever
// collects the other hops can join this one to them, and the log lines carry
// its ids. Pure, except for the random span id, which the caller supplies.
//
// Where it comes from (docs/http-contract.md): the W3C HTTP headers name the hop
// that delivered the event, so they are the parent when valid; otherwise the
// CloudEvents distributed-tracing extension (ce-traceparent in binary mode, the
// traceparent attribute in structured mode), which names where the event began.
// Anything malformed is ignored, as if absent: never an error for the sender.

/** A parsed traceparent: the trace, the parent span, the flags (two hex digits). */
export interface TraceParent {
  readonly traceId: string;
  readonly parentId: string;
  readonly flags: string;
}

/** The context of this function's span for one request. */
export interface Span {
  readonly traceId: string;
  /** This function's span: the parent of everything it sends on. */
  readonly spanId: string;
  /** What to send as traceparent (version 00). */
  readonly traceparent: string;
  /** The incoming tracestate, passed on unchanged; undefined when absent or malformed. */
  readonly tracestate: string | undefined;
}

/** Where a trace context may come from: each a traceparent and its tracestate. */
export interface TraceCarriers {
  readonly headers: { readonly traceparent: unknown; readonly tracestate: unknown };
  readonly extension: { readonly traceparent: unknown; readonly tracestate: unknown };
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const HEX2 = /^[0-9a-f]{2}$/;
const ZERO32 = "0".repeat(32);
const ZERO16 = "0".repeat(16);
// Version 00 defines two flags: sampled (01) and, in Level 2, random trace-id (02).
// Flags of later versions are not ours to pass on.
const KNOWN_FLAGS = 0x03;

/** Reads a traceparent header value; undefined when it is not a valid one. */
export function parseTraceparent(value: unknown): TraceParent | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  const version = text.slice(0, 2);
  if (!HEX2.test(version) || version === "ff") return undefined;
  // Version 00 is exactly 55 characters; a later version may append fields after a '-'.
  if (version === "00" ? text.length !== 55 : text.length < 55 || (text.length > 55 && text[55] !== "-")) return undefined;
  if (text[2] !== "-" || text[35] !== "-" || text[52] !== "-") return undefined;
  const traceId = text.slice(3, 35);
  const parentId = text.slice(36, 52);
  const flags = text.slice(53, 55);
  if (!HEX32.test(traceId) || traceId === ZERO32) return undefined;
  if (!HEX16.test(parentId) || parentId === ZERO16) return undefined;
  if (!HEX2.test(flags)) return undefined;
  return { traceId, parentId, flags };
}

// tracestate list members (W3C, section 3.3.1): simple-key or tenant@system key,
// then '=' and a value of printable ASCII without ',' or '=', not ending in a space.
const KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const MAX_MEMBERS = 32;

/** Reads a tracestate value (several headers joined by ','); undefined when absent, empty or malformed. */
export function parseTracestate(value: unknown): string | undefined {
  const text = Array.isArray(value) ? value.join(",") : value;
  if (typeof text !== "string") return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of text.split(",")) {
    const member = raw.trim();
    if (member === "") continue; // empty list-members are allowed, and dropped
    const eq = member.indexOf("=");
    if (eq === -1) return undefined;
    const key = member.slice(0, eq);
    if (!KEY.test(key) || !VALUE.test(member.slice(eq + 1)) || keys.has(key)) return undefined;
    keys.add(key);
    members.push(member);
  }
  if (members.length === 0 || members.length > MAX_MEMBERS) return undefined;
  return members.join(",");
}

/** The incoming context: the HTTP headers' when valid, else the extension's. */
export function incomingTrace(carriers: TraceCarriers): (TraceParent & { readonly tracestate: string | undefined }) | undefined {
  for (const carrier of [carriers.headers, carriers.extension]) {
    const parent = parseTraceparent(carrier.traceparent);
    if (parent !== undefined) return { ...parent, tracestate: parseTracestate(carrier.tracestate) };
  }
  return undefined;
}

/**
 * This function's span, a child of `parent`: the same trace, a new span id
 * (16 hex digits, not all zero: `newSpanId` must supply that).
 */
export function childSpan(parent: TraceParent & { readonly tracestate: string | undefined }, spanId: string): Span {
  const flags = (Number.parseInt(parent.flags, 16) & KNOWN_FLAGS).toString(16).padStart(2, "0");
  return {
    traceId: parent.traceId,
    spanId,
    traceparent: `00-${parent.traceId}-${spanId}-${flags}`,
    tracestate: parent.tracestate,
  };
}
