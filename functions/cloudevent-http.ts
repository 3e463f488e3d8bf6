// CloudEvents 1.0 HTTP protocol binding: pure {headers, body} codecs.
//
// The cloudevents SDK's HTTP.toEvent neither validates what it parses (it fills
// in a missing id and specversion) nor percent-decodes ce-* headers, and its
// validator is costly to load and to run; this codec does both checks itself in
// one pass. The SDK's types are used, and its encoder is the peer the tests
// check this codec against.
import type { CloudEventV1 } from "cloudevents";
import { isUtf8 } from "node:buffer";
import { HttpError } from "./errors.ts";
import { isObject, jsonType, type JsonObject } from "./member.ts";

export type HeaderMap = Readonly<Record<string, string | string[] | undefined>>;

export interface HttpMessage {
  readonly headers: HeaderMap;
  readonly body: Buffer;
}

export interface EncodedMessage {
  readonly headers: Record<string, string>;
  readonly body: string;
}

export type ContentMode = "binary" | "structured";

export interface ReceivedEvent {
  readonly event: CloudEventV1<unknown>;
  readonly mode: ContentMode;
}

const STRUCTURED = "application/cloudevents+json";
const BATCH = "application/cloudevents-batch+json";
const REQUIRED = ["id", "source", "type"] as const;
// Attributes whose value, when present, the spec defines as a string.
const STRING_ATTRIBUTES = ["subject", "time", "datacontenttype", "dataschema"] as const;
// CloudEvents attribute names: lower-case letters and digits (spec: at most 20,
// which senders do not always honour, so the length is not enforced).
const attributeName = /^[a-z0-9]+$/;

interface MediaType {
  readonly type: string;
  readonly charset: string | undefined;
}

function parseMediaType(header: string | undefined): MediaType | undefined {
  if (header === undefined || header === "") return undefined;
  const [type = "", ...params] = header.split(";");
  let charset: string | undefined;
  for (const param of params) {
    const eq = param.indexOf("=");
    if (eq !== -1 && param.slice(0, eq).trim().toLowerCase() === "charset") {
      charset = param
        .slice(eq + 1)
        .trim()
        .replace(/^"|"$/g, "")
        .toLowerCase();
    }
  }
  return { type: type.trim().toLowerCase(), charset };
}

function isJsonType(type: string): boolean {
  return type === "application/json" || type.endsWith("+json") || type === "text/json";
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}

/** ce-* header values are percent-encoded by the sender (space, '"', '%', non-ASCII); decode once. */
export function decodeHeaderValue(name: string, value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new HttpError("ERR_INVALID_ENCODING", `header ${name} is not valid percent-encoding`);
  }
}

// Percent-encode what the binding says must be: controls, space, '"', '%', and
// every non-ASCII character (as UTF-8 bytes).
const needsEncoding = /[^\x21\x23-\x24\x26-\x7e]/;
export function encodeHeaderValue(value: string): string {
  if (!needsEncoding.test(value)) return value;
  let out = "";
  for (const ch of value) {
    if (needsEncoding.test(ch)) {
      for (const byte of Buffer.from(ch, "utf8")) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    } else {
      out += ch;
    }
  }
  return out;
}

function textOf(body: Buffer, media: MediaType | undefined, what: string): string {
  if (media?.charset !== undefined && media.charset !== "utf-8" && media.charset !== "utf8") {
    throw new HttpError("ERR_UNSUPPORTED_MEDIA_TYPE", `${what}: charset ${media.charset} is not supported, use utf-8`);
  }
  if (!isUtf8(body)) throw new HttpError("ERR_INVALID_ENCODING", `${what} is not valid UTF-8`);
  return body.toString("utf8");
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8's message names the offending token and position, which is what a sender needs.
    const detail = err instanceof SyntaxError ? `: ${err.message}` : "";
    throw new HttpError("ERR_MALFORMED_JSON", `${what} is not valid JSON${detail}`);
  }
}

function invalidAttribute(message: string): HttpError {
  return new HttpError("ERR_INVALID_ATTRIBUTE", message);
}

/** Checks the context attributes the spec requires, in either content mode. */
function checkAttributes(event: CloudEventV1<unknown>, prefix: string): void {
  const specversion = event.specversion;
  if (specversion === undefined || specversion === "") throw invalidAttribute(`${prefix}specversion is required`);
  if (typeof specversion !== "string") throw invalidAttribute(`${prefix}specversion must be a string`);
  if (specversion !== "1.0") {
    throw new HttpError("ERR_UNSUPPORTED_SPECVERSION", `specversion ${JSON.stringify(specversion)} is not supported, only 1.0`);
  }
  for (const name of REQUIRED) {
    const value: unknown = event[name];
    if (value === undefined || value === null) throw invalidAttribute(`${prefix}${name} is required`);
    if (typeof value !== "string") throw invalidAttribute(`${prefix}${name} must be a string, got ${jsonType(value)}`);
    if (value === "") throw invalidAttribute(`${prefix}${name} must not be empty`);
  }
  for (const name of STRING_ATTRIBUTES) {
    const value: unknown = event[name];
    if (value !== undefined && typeof value !== "string") {
      throw invalidAttribute(`${prefix}${name} must be a string, got ${jsonType(value)}`);
    }
  }
}

function decodeBinary(message: HttpMessage, media: MediaType | undefined): CloudEventV1<unknown> {
  const attributes: Record<string, unknown> = {};
  let sawSpecversion = false;
  for (const header of Object.keys(message.headers)) {
    if (!header.startsWith("ce-")) continue;
    const name = header.slice(3).toLowerCase();
    if (!attributeName.test(name)) continue;
    const value = single(message.headers[header]);
    if (value === undefined) continue;
    if (name === "specversion") sawSpecversion = true;
    attributes[name] = decodeHeaderValue(header, value);
  }
  if (!sawSpecversion) {
    throw new HttpError(
      "ERR_NOT_A_CLOUDEVENT",
      `not a CloudEvent: binary mode needs ce-specversion, ce-id, ce-source and ce-type headers; structured mode needs content-type ${STRUCTURED}`,
    );
  }
  const event = attributes as CloudEventV1<unknown>;
  checkAttributes(event, "header ce-");
  if (media !== undefined) event.datacontenttype = single(message.headers["content-type"]) ?? media.type;
  if (message.body.length > 0) {
    // An absent content-type is read as JSON, the CloudEvents default.
    if (media !== undefined && !isJsonType(media.type)) {
      throw new HttpError("ERR_UNSUPPORTED_MEDIA_TYPE", `content-type ${media.type} is not supported: event data must be application/json`);
    }
    event.data = parseJson(textOf(message.body, media, "body"), "body");
  }
  return event;
}

function decodeStructured(message: HttpMessage, media: MediaType): CloudEventV1<unknown> {
  const envelope = parseJson(textOf(message.body, media, "body"), "body");
  if (!isObject(envelope)) throw new HttpError("ERR_NOT_A_CLOUDEVENT", `structured event must be a JSON object, got ${jsonType(envelope)}`);
  const attributes: Record<string, unknown> = {};
  for (const key of Object.keys(envelope)) {
    if (key === "data" || key === "data_base64") continue;
    if (!attributeName.test(key)) throw invalidAttribute(`attribute name ${JSON.stringify(key)} is not valid: lower-case letters and digits only`);
    attributes[key] = envelope[key];
  }
  const event = attributes as CloudEventV1<unknown>;
  checkAttributes(event, "attribute ");
  event.data = structuredData(envelope, event.datacontenttype);
  if (event.data === undefined) delete event.data;
  return event;
}

function structuredData(envelope: JsonObject, datacontenttype: string | undefined): unknown {
  const hasData = Object.hasOwn(envelope, "data");
  const base64 = envelope["data_base64"];
  if (hasData && base64 !== undefined) throw invalidAttribute("data and data_base64 must not both be present");
  const dataMedia = parseMediaType(datacontenttype);
  if (dataMedia !== undefined && !isJsonType(dataMedia.type)) {
    throw new HttpError("ERR_UNSUPPORTED_MEDIA_TYPE", `datacontenttype ${dataMedia.type} is not supported: event data must be application/json`);
  }
  if (base64 === undefined) return envelope["data"];
  if (typeof base64 !== "string") throw invalidAttribute(`data_base64 must be a string, got ${jsonType(base64)}`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) throw invalidAttribute("data_base64 is not valid base64");
  return parseJson(textOf(Buffer.from(base64, "base64"), dataMedia, "data_base64"), "data_base64");
}

/** Reads one CloudEvent from an HTTP request, in binary or structured mode. Throws HttpError (4xx). */
export function decodeHttp(message: HttpMessage): ReceivedEvent {
  const media = parseMediaType(single(message.headers["content-type"]));
  if (media?.type === STRUCTURED) return { event: decodeStructured(message, media), mode: "structured" };
  if (media?.type === BATCH) {
    throw new HttpError("ERR_UNSUPPORTED_MEDIA_TYPE", "batched CloudEvents are not supported: send one event per request");
  }
  if (media?.type.startsWith("application/cloudevents")) {
    throw new HttpError("ERR_UNSUPPORTED_MEDIA_TYPE", `content-type ${media.type} is not supported: use ${STRUCTURED} or binary mode`);
  }
  return { event: decodeBinary(message, media), mode: "binary" };
}

/** Writes a CloudEvent with JSON data in binary content mode. */
export function encodeBinary(event: CloudEventV1<unknown>): EncodedMessage {
  const headers: Record<string, string> = { "content-type": event.datacontenttype ?? "application/json" };
  for (const key of Object.keys(event)) {
    if (key === "data" || key === "data_base64" || key === "datacontenttype") continue;
    const value = event[key];
    if (value === undefined) continue;
    headers[`ce-${key}`] = encodeHeaderValue(String(value));
  }
  return { headers, body: event.data === undefined ? "" : JSON.stringify(event.data) };
}
