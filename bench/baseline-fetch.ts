// Baseline (c), for the cluster bench (issue 12): the greeter written by hand
// on node:http and Node's global fetch, reading the same kubeconfig (KUBECONFIG),
// making the same writes as the function for a Resource-mode event, in the
// same order, with bodies of the same meaning (functions/claim.ts, recorder.ts,
// kube-client.ts):
//   1. the claim: a status merge patch under the event's resourceVersion that
//      records the greeting and names the Event it owes (status.pendingEvent);
//      409 (another delivery won) or 404 (gone) → 204, nothing said;
//   2. the greeting line and the 200 reply: the reply waits for the claim only;
//   3. off the reply path, at most 8 Members at a time as the function's
//      recorder: the Event, then a second merge patch under the claim's
//      resourceVersion that clears the mark.
// A delete says farewell and writes its Event, as the function does without
// the finalizer. What needs the function's convergence loop (a Member that is
// being deleted or still owes an Event, Reference mode) is refused with a 500:
// the bench never sends it.
// Environment: PORT (default 8080), HOST (default: all interfaces), KUBECONFIG.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { greetingFor, greetingForState, type Greeting } from "../functions/greeting.ts";
import { readMemberEvent } from "../functions/member-event.ts";
import { isObject, type Member, type MemberRef } from "../functions/member.ts";
import { eventName, eventReasons } from "../functions/recorder.ts";
import { connectFetch, type FetchKube } from "./fetch-kube.ts";
import { createLineWriter, errorBody, greetingLine, HttpError, replyData, serve, replyHeaders } from "./greet.ts";
import { readKubeconfig } from "./kubeconfig-lite.ts";

const MAX_BODY = 1024 * 1024;
// Background writes at once, as functions/recorder.ts's default: the rest wait their turn.
const BACKGROUND = 8;
const log = createLineWriter();

/** Runs `work` when one of the BACKGROUND slots is free; never throws. */
const background = (() => {
  let running = 0;
  const waiting: (() => Promise<void>)[] = [];
  const start = (work: () => Promise<void>): void => {
    running++;
    work()
      .catch(() => undefined)
      .finally(() => {
        running--;
        const next = waiting.shift();
        if (next !== undefined) start(next);
      });
  };
  return (work: () => Promise<void>): void => {
    if (running < BACKGROUND) start(work);
    else waiting.push(work);
  };
})();

const kubeconfig = process.env["KUBECONFIG"]?.split(":").find((p) => p !== "");
if (kubeconfig === undefined) throw new Error("the fetch baseline needs KUBECONFIG");
const kube: FetchKube = connectFetch(readKubeconfig(kubeconfig));

function warn(msg: string, fields: Record<string, string | number>): void {
  log.write(`${JSON.stringify({ time: new Date().toISOString(), level: "warn", msg, ...fields })}\n`);
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  headers["content-length"] = String(Buffer.byteLength(body));
  res.writeHead(status, headers);
  res.end(body);
}

function fail(res: ServerResponse, err: HttpError): void {
  send(res, err.status, { "content-type": "application/json; charset=utf-8" }, errorBody(err));
}

function noContent(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

function attribute(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  if (typeof value !== "string" || value === "") throw new HttpError("ERR_INVALID_ATTRIBUTE", `header ${name} is required`);
  return value;
}

/** What a failed API answer means for the sender, as functions/errors.ts maps it. */
function apiFailure(what: string, status: number): HttpError {
  return status === 429 || status >= 500
    ? new HttpError("ERR_CLUSTER_UNAVAILABLE", `${what}: API server answered ${status}; try again later`)
    : new HttpError("ERR_CLUSTER_REJECTED", `${what}: API server answered ${status}`);
}

function resourceVersionOf(object: unknown): string | undefined {
  const metadata = isObject(object) ? object["metadata"] : undefined;
  const version = isObject(metadata) ? metadata["resourceVersion"] : undefined;
  return typeof version === "string" ? version : undefined;
}

/** Step 3, off the reply path: the Event the claim owes, then the mark cleared under the claim's resourceVersion. */
async function recordPending(member: Member, greeting: Greeting, pending: string, claimVersion: string): Promise<void> {
  const ref: MemberRef = { name: member.name, namespace: member.namespace };
  const fields = { member: member.name, namespace: member.namespace };
  try {
    const event = { name: pending, member: { ...ref, uid: member.uid }, reason: eventReasons[greeting.reason], message: greeting.text, time: new Date() };
    const created = await kube.createEvent(event);
    if (created.status >= 300 && created.status !== 409) return warn(`recording the greeting as an Event failed: ${created.status}`, fields);
    const cleared = await kube.patchStatus(ref, claimVersion, { pendingEvent: null });
    if (cleared.status !== 200) warn(`clearing the Event's mark failed: ${cleared.status}`, fields);
  } catch (err) {
    warn(`recording the greeting as an Event failed: ${err instanceof Error ? err.message : String(err)}`, fields);
  }
}

/** A farewell from a delete event: said, and its Event written off the reply path (no claim: the object is gone). */
function recordFarewell(member: Member, greeting: Greeting, eventId: string): void {
  const key = member.resourceVersion === undefined ? eventId : undefined;
  const event = {
    name: eventName(greeting, member, key),
    member: { name: member.name, namespace: member.namespace, uid: member.uid },
    reason: eventReasons[greeting.reason],
    message: greeting.text,
    time: new Date(),
  };
  background(() =>
    kube.createEvent(event).then(
      (created) => {
        if (created.status >= 300 && created.status !== 409) warn(`recording the greeting as an Event failed: ${created.status}`, { member: member.name });
      },
      (err: unknown) => warn(`recording the greeting as an Event failed: ${err instanceof Error ? err.message : String(err)}`, { member: member.name }),
    ),
  );
}

/** Steps 1 and 2: the claim; the greeting when it was written, undefined when nothing is to be said. */
async function claim(member: Member): Promise<{ greeting: Greeting; pending: string; version: string } | undefined> {
  if (member.deleting || member.pendingEvent !== undefined) throw new HttpError("ERR_INTERNAL", "the fetch baseline does not converge this Member");
  const greeting = greetingForState(member);
  if (greeting === undefined) return undefined;
  if (member.resourceVersion === undefined) throw new HttpError("ERR_CLUSTER_REJECTED", "the Member has no resourceVersion");
  const at = new Date().toISOString();
  const pending = eventName(greeting, member, `${member.uid ?? ""}/${at}`);
  const status = {
    team: member.team,
    greeting: greeting.text,
    greetedAt: at,
    ...(member.generation === undefined ? {} : { observedGeneration: member.generation }),
    pendingEvent: { name: pending, reason: eventReasons[greeting.reason] },
  };
  const what = `patch status of member ${member.namespace}/${member.name}`;
  let answer: Awaited<ReturnType<FetchKube["patchStatus"]>>;
  try {
    answer = await kube.patchStatus(member, member.resourceVersion, status);
  } catch (err) {
    throw new HttpError("ERR_CLUSTER_UNAVAILABLE", `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Lost the race to another delivery, or gone: nothing to say.
  if (answer.status === 409 || answer.status === 404) return undefined;
  if (answer.status !== 200) throw apiFailure(what, answer.status);
  const version = resourceVersionOf(answer.body);
  if (version === undefined) throw new HttpError("ERR_CLUSTER_REJECTED", `${what}: no resourceVersion in the answer`);
  return { greeting, pending, version };
}

function reply(res: ServerResponse, greeting: Greeting, id: string, type: string): void {
  log.write(greetingLine(greeting, id, type));
  send(res, 200, replyHeaders(greeting), JSON.stringify(replyData(greeting)));
}

async function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const specversion = req.headers["ce-specversion"];
  if (specversion === undefined) throw new HttpError("ERR_NOT_A_CLOUDEVENT", "not a binary-mode CloudEvent");
  if (specversion !== "1.0") throw new HttpError("ERR_UNSUPPORTED_SPECVERSION", "only specversion 1.0 is supported");
  const id = attribute(req, "ce-id");
  const source = attribute(req, "ce-source");
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
  const said = readMemberEvent({ specversion: "1.0", id, source, type, data, kind: req.headers["ce-kind"], namespace: req.headers["ce-namespace"] });
  if (said.kind === "other" || said.kind === "resync") return noContent(res);
  if (said.kind === "member-ref") throw new HttpError("ERR_INTERNAL", "the fetch baseline handles Resource-mode events only");
  const member = said.member;
  if (said.change === "delete") {
    if (member.farewellRecorded) return noContent(res);
    const greeting = greetingFor("delete", member);
    if (greeting === undefined) return noContent(res);
    reply(res, greeting, id, type);
    return recordFarewell(member, greeting, id);
  }
  const claimed = await claim(member);
  if (claimed === undefined) return noContent(res);
  reply(res, claimed.greeting, id, type);
  background(() => recordPending(member, claimed.greeting, claimed.pending, claimed.version));
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
    if (size > MAX_BODY) return fail(res, new HttpError("ERR_BODY_TOO_LARGE", `request body is larger than ${MAX_BODY} bytes`));
    handle(req, res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)).catch((err: unknown) => {
      fail(res, err instanceof HttpError ? err : new HttpError("ERR_INTERNAL", "internal error"));
    });
  });
});
serve(server, log);
