// Baseline (a): the greeter written by hand on node:http, the practical ceiling
// for one Node process. Binary-mode CloudEvents only, parsed by hand; the same
// greeting rules, reply event and log line as the greeter (bench/greet.ts).
// Environment: PORT (default 8080), HOST (default: all interfaces).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createLineWriter, decide, errorBody, greetingLine, HttpError, replyData, serve, replyHeaders } from "./greet.ts";

const MAX_BODY = 1024 * 1024;
const log = createLineWriter();

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  headers["content-length"] = String(Buffer.byteLength(body));
  res.writeHead(status, headers);
  res.end(body);
}

function fail(res: ServerResponse, err: HttpError): void {
  send(res, err.status, { "content-type": "application/json; charset=utf-8" }, errorBody(err));
}

function attribute(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  if (typeof value !== "string" || value === "") throw new HttpError("ERR_INVALID_ATTRIBUTE", `header ${name} is required`);
  return value;
}

function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  try {
    const specversion = req.headers["ce-specversion"];
    if (specversion === undefined) throw new HttpError("ERR_NOT_A_CLOUDEVENT", "not a binary-mode CloudEvent");
    if (specversion !== "1.0") throw new HttpError("ERR_UNSUPPORTED_SPECVERSION", "only specversion 1.0 is supported");
    const id = attribute(req, "ce-id");
    attribute(req, "ce-source");
    const type = attribute(req, "ce-type");
    const contentType = req.headers["content-type"];
    if (contentType !== undefined && !contentType.startsWith("application/json")) {
      throw new HttpError("ERR_UNSUPPORTED_MEDIA_TYPE", "event data must be application/json");
    }
    let data: unknown;
    if (body.length > 0) {
      try {
        data = JSON.parse(body.toString("utf8"));
      } catch {
        throw new HttpError("ERR_MALFORMED_JSON", "body is not valid JSON");
      }
    }
    const greeting = decide(type, data, req.headers["ce-kind"], req.headers["ce-namespace"]);
    if (greeting === undefined) {
      res.writeHead(204);
      res.end();
      return;
    }
    log.write(greetingLine(greeting, id, type));
    send(res, 200, replyHeaders(greeting), JSON.stringify(replyData(greeting)));
  } catch (err) {
    fail(res, err instanceof HttpError ? err : new HttpError("ERR_INTERNAL", "internal error"));
  }
}

const server = createServer((req, res) => {
  if (req.url !== "/" || req.method !== "POST") {
    req.resume();
    fail(res, new HttpError(req.url === "/" ? "ERR_METHOD_NOT_ALLOWED" : "ERR_NOT_FOUND", `no route for ${req.method} ${req.url}`));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > MAX_BODY) fail(res, new HttpError("ERR_BODY_TOO_LARGE", `request body is larger than ${MAX_BODY} bytes`));
    else handle(req, res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  });
});
serve(server, log);
