// A stand-in for Knative's ApiServerSource where Knative is not installed: it
// watches Members and POSTs each change to K_SINK as the same CloudEvent the
// adapter would send. For development clusters and tests, not production.
//
// Like the adapter it sends nothing for Members that exist when it starts (it
// lists first and watches from there), sends changes one at a time in order,
// and retries a failed send 5 times with exponential backoff from 50 ms on the
// statuses the adapter retries; then it drops the event and logs why.
//
// Like an informer it never loses a change between two watches: the API server
// ends every watch after --min-request-timeout (randomised, minutes), and the
// next one resumes from the last resourceVersion seen (bookmarks included).
// Only when that version has expired (410 Gone) does it list again, and then it
// sends what the list shows has changed since: an update for each Member that is
// new or changed, a delete for each that is gone (the informer's Replace). The
// function is level-triggered and idempotent, so an extra update is harmless.
//
// The decisions (what an event means, which resourceVersion to resume from,
// what a re-list must send) are the small pure functions below; the loop and
// the HTTP are at the end.
import { CustomObjectsApi, KubeConfig, Watch } from "@kubernetes/client-node";
import { createLogger, isLevel, type Logger } from "../functions/logger.ts";
import { MEMBER_API_VERSION, MEMBER_GROUP, MEMBER_KIND, MEMBER_PLURAL, MEMBER_VERSION } from "../functions/member.ts";
import { memberCloudEvent, toBinaryRequest, type Mode, type WatchChange, type WatchedObject } from "./member-events.ts";

const RETRIED = new Set([404, 413, 425, 429, 502, 503, 504]);

// ---------------------------------------------------------------------------
// Pure parts

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function metadataString(object: unknown, key: "name" | "resourceVersion" | "uid"): string | undefined {
  const metadata = isRecord(object) ? object["metadata"] : undefined;
  const value = isRecord(metadata) ? metadata[key] : undefined;
  return typeof value === "string" && value !== "" ? value : undefined;
}

export const nameOf = (object: unknown): string | undefined => metadataString(object, "name");
export const resourceVersionOf = (object: unknown): string | undefined => metadataString(object, "resourceVersion");
const uidOf = (object: unknown): string | undefined => metadataString(object, "uid");

/** A Status object saying the resourceVersion asked for has expired (how a watch reports 410 in-stream). */
export function isGoneStatus(object: unknown): boolean {
  if (!isRecord(object)) return false;
  return object["code"] === 410 || object["reason"] === "Expired" || object["reason"] === "Gone";
}

/** An error that ended a watch because its resourceVersion has expired (the watch request itself answered 410). */
export function isGoneError(err: unknown): boolean {
  return isRecord(err) && (err["statusCode"] === 410 || err["code"] === 410);
}

/** What one watch event means for the source. */
export type WatchEvent =
  | { readonly kind: "change"; readonly change: WatchChange; readonly object: WatchedObject; readonly resourceVersion: string | undefined }
  | { readonly kind: "bookmark"; readonly resourceVersion: string | undefined }
  | { readonly kind: "gone"; readonly message: string }
  | { readonly kind: "error"; readonly message: string }
  | { readonly kind: "unknown"; readonly phase: string };

function statusMessage(object: unknown): string {
  const message = isRecord(object) ? object["message"] : undefined;
  return typeof message === "string" ? message : (JSON.stringify(object) ?? String(object));
}

export function classifyWatchEvent(phase: string, object: unknown): WatchEvent {
  switch (phase) {
    case "ADDED":
    case "MODIFIED":
    case "DELETED":
      if (!isRecord(object) || nameOf(object) === undefined) return { kind: "unknown", phase };
      return { kind: "change", change: phase, object: object as WatchedObject, resourceVersion: resourceVersionOf(object) };
    case "BOOKMARK":
      return { kind: "bookmark", resourceVersion: resourceVersionOf(object) };
    case "ERROR":
      return isGoneStatus(object) ? { kind: "gone", message: statusMessage(object) } : { kind: "error", message: statusMessage(object) };
    default:
      return { kind: "unknown", phase };
  }
}

/** The resourceVersion to resume from after `event`: the newest one the server has shown us. */
export function nextResourceVersion(current: string, event: WatchEvent): string {
  if (event.kind !== "change" && event.kind !== "bookmark") return current;
  return event.resourceVersion ?? current;
}

/** Keeps the store (name -> last object seen) in step with a watch change. */
export function applyChange(store: Map<string, WatchedObject>, change: WatchChange, object: WatchedObject): void {
  const name = nameOf(object);
  if (name === undefined) return;
  if (change === "DELETED") store.delete(name);
  else store.set(name, object);
}

export function storeOf(listed: readonly WatchedObject[]): Map<string, WatchedObject> {
  const store = new Map<string, WatchedObject>();
  for (const object of listed) applyChange(store, "ADDED", object);
  return store;
}

export interface PendingChange {
  readonly change: "MODIFIED" | "DELETED";
  readonly object: WatchedObject;
}

/**
 * A re-list after 410: the new store, and the events that bring the sink up to
 * date with it. Listed and new, or listed with another resourceVersion: an
 * update. Known and not listed: a delete with the last object seen. Listed under
 * a known name but another uid: the old Member went and a new one came, so a
 * delete for the old one first, then an update for the new one.
 */
export function replaceStore(
  known: ReadonlyMap<string, WatchedObject>,
  listed: readonly WatchedObject[],
): { store: Map<string, WatchedObject>; changes: PendingChange[] } {
  const store = storeOf(listed);
  const changes: PendingChange[] = [];
  for (const [name, object] of store) {
    const before = known.get(name);
    const oldUid = before === undefined ? undefined : uidOf(before);
    const newUid = uidOf(object);
    const replaced = before !== undefined && oldUid !== undefined && newUid !== undefined && oldUid !== newUid;
    if (before !== undefined && replaced) changes.push({ change: "DELETED", object: before });
    if (before === undefined || replaced || resourceVersionOf(before) !== resourceVersionOf(object)) changes.push({ change: "MODIFIED", object });
  }
  for (const [name, object] of known) {
    if (!store.has(name)) changes.push({ change: "DELETED", object });
  }
  return { store, changes };
}

/** How a watch ended. */
export type WatchEnd =
  | { readonly kind: "aborted" }
  | { readonly kind: "gone"; readonly message: string }
  | { readonly kind: "closed"; readonly reason: string }
  | { readonly kind: "failed"; readonly message: string };

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The `done` callback's argument as a WatchEnd: null is the server closing the stream (its timeout). */
export function classifyWatchDone(err: unknown): WatchEnd {
  if (err === null || err === undefined) return { kind: "closed", reason: "closed by the server" };
  if (isGoneError(err)) return { kind: "gone", message: errorText(err) };
  // @kubernetes/client-node's Watch gives up on a stream silent for 30 s: nothing is lost, resume.
  if (err instanceof Error && err.name === "TimeoutError") return { kind: "closed", reason: "no data for 30 s" };
  return { kind: "failed", message: errorText(err) };
}

/**
 * How long to wait before the next watch (or list): at once after the server's
 * timeout or a 410, but 1 s after an error, after a close that came too soon
 * for a timeout, or after a 410 at once on a version just listed, so that a
 * server refusing watches is not hammered.
 */
export function resumeDelayMs(end: WatchEnd, lastedMs: number, fromList: boolean): number {
  if (end.kind === "failed") return 1000;
  if (end.kind === "closed" && lastedMs < 1000) return 1000;
  if (end.kind === "gone" && fromList && lastedMs < 1000) return 1000;
  return 0;
}

// ---------------------------------------------------------------------------
// The send queue: one event at a time, in order, whatever happens to each.

export interface SendQueue {
  enqueue(change: WatchChange, object: WatchedObject): void;
  /** Resolves once everything enqueued so far has been sent or dropped. */
  drained(): Promise<void>;
}

export function createSendQueue(
  send: (change: WatchChange, object: WatchedObject) => Promise<void>,
  onFailure: (err: unknown, change: WatchChange, object: WatchedObject) => void,
): SendQueue {
  let tail = Promise.resolve();
  return {
    enqueue(change, object) {
      tail = tail
        .then(() => send(change, object))
        .catch((err: unknown) => {
          // A rejected tail would skip every later send: nothing may escape here.
          try {
            onFailure(err, change, object);
          } catch {
            // the report of a failure failed; the queue goes on all the same
          }
        });
    },
    drained: () => tail,
  };
}

// ---------------------------------------------------------------------------
// The loop: list once, then watch, resume, and re-list only on 410.

export interface Listing {
  readonly resourceVersion: string;
  readonly items: readonly WatchedObject[];
}

/** What the loop needs of @kubernetes/client-node's Watch. */
export interface Watcher {
  watch(
    path: string,
    query: Readonly<Record<string, string | boolean>>,
    callback: (phase: string, object: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<{ abort(): void }>;
}

export interface LoopOptions {
  readonly path: string;
  readonly list: () => Promise<Listing>;
  readonly watcher: Watcher;
  readonly queue: SendQueue;
  readonly logger: Logger;
  /** The line logged once the first list is done and watching begins, and its fields. */
  readonly startMessage?: string;
  readonly startFields?: Readonly<Record<string, string>>;
  /** Waits `ms`, or less when `signal` aborts (tests pass a faster one). */
  readonly pause?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly now?: () => number;
}

export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * One watch from `resourceVersion` until it ends. `onEvent` sees every event
 * before the watch ends; an in-stream 410 ends it at once. The abort listener
 * lives exactly as long as this watch.
 */
export function watchOnce(
  watcher: Watcher,
  path: string,
  resourceVersion: string,
  signal: AbortSignal,
  onEvent: (event: WatchEvent) => void,
): Promise<WatchEnd> {
  return new Promise<WatchEnd>((resolve) => {
    let request: { abort(): void } | undefined;
    let ended = false;
    const finish = (end: WatchEnd): void => {
      if (ended) return;
      ended = true;
      signal.removeEventListener("abort", onAbort);
      request?.abort();
      resolve(end);
    };
    const onAbort = (): void => finish({ kind: "aborted" });
    if (signal.aborted) return finish({ kind: "aborted" });
    signal.addEventListener("abort", onAbort, { once: true });
    watcher
      .watch(
        path,
        { resourceVersion, allowWatchBookmarks: true },
        (phase, object) => {
          if (ended) return;
          const event = classifyWatchEvent(phase, object);
          if (event.kind === "gone") return finish({ kind: "gone", message: event.message });
          if (event.kind === "error") return finish({ kind: "failed", message: event.message });
          onEvent(event);
        },
        (err) => finish(signal.aborted ? { kind: "aborted" } : classifyWatchDone(err)),
      )
      .then((req) => {
        request = req;
        // It may have ended (done, a 410 event, SIGTERM) before the request was handed over.
        if (ended) req.abort();
      })
      .catch((err: unknown) => finish({ kind: "failed", message: errorText(err) }));
  });
}

export async function watchLoop(options: LoopOptions, signal: AbortSignal): Promise<void> {
  const { path, list, watcher, queue, logger } = options;
  const wait = options.pause ?? pause;
  const now = options.now ?? Date.now;
  let store = new Map<string, WatchedObject>();
  let resourceVersion = "";
  let listedVersion: string | undefined;
  let listNeeded = true;
  let firstList = true;

  while (!signal.aborted) {
    if (listNeeded) {
      let listing: Listing;
      try {
        listing = await list();
      } catch (err) {
        if (signal.aborted) break;
        logger.warn(`listing members failed: ${errorText(err)}; retrying in 1 s`);
        await wait(1000, signal);
        continue;
      }
      if (firstList) {
        // First start, as the adapter: what exists now is not news.
        firstList = false;
        store = storeOf(listing.items);
        logger.info("listed members", { count: store.size, resourceVersion: listing.resourceVersion });
        logger.info(options.startMessage ?? "watching members", { ...options.startFields, resourceVersion: listing.resourceVersion });
      } else {
        const { store: next, changes } = replaceStore(store, listing.items);
        store = next;
        for (const { change, object } of changes) queue.enqueue(change, object);
        logger.info("re-listed members", {
          count: store.size,
          resourceVersion: listing.resourceVersion,
          updates: changes.filter((c) => c.change === "MODIFIED").length,
          deletes: changes.filter((c) => c.change === "DELETED").length,
          queued: changes.map((c) => `${c.change === "MODIFIED" ? "update" : "delete"} ${nameOf(c.object) ?? "?"}`).join(", "),
        });
      }
      resourceVersion = listing.resourceVersion;
      listedVersion = listing.resourceVersion;
      listNeeded = false;
    }

    const fromList = resourceVersion === listedVersion;
    const started = now();
    const end = await watchOnce(watcher, path, resourceVersion, signal, (event) => {
      resourceVersion = nextResourceVersion(resourceVersion, event);
      if (event.kind !== "change") return;
      applyChange(store, event.change, event.object);
      queue.enqueue(event.change, event.object);
    });
    switch (end.kind) {
      case "aborted":
        break;
      case "gone":
        logger.info("watch expired (410 Gone); listing again", { resourceVersion, message: end.message });
        listNeeded = true;
        break;
      case "closed":
        logger.info("watch ended; resuming", { reason: end.reason, resourceVersion });
        break;
      case "failed":
        logger.warn(`watch failed: ${end.message}; resuming`, { resourceVersion });
        break;
    }
    const delay = resumeDelayMs(end, now() - started, fromList);
    if (delay > 0) await wait(delay, signal);
  }
  await queue.drained();
}

// ---------------------------------------------------------------------------
// I/O: configuration, the list, the HTTP sends.

export interface SourceOptions {
  readonly sink: string;
  readonly namespace: string;
  readonly mode: Mode;
  readonly kubeConfig: KubeConfig;
}

function fail(message: string): never {
  throw new Error(message);
}

export function optionsFromEnv(env: NodeJS.ProcessEnv): SourceOptions {
  const sink = env["K_SINK"] ?? fail("K_SINK must name the URL to send Member events to");
  const mode = env["MODE"] ?? "Resource";
  if (mode !== "Resource" && mode !== "Reference") fail(`MODE must be Resource or Reference, got ${JSON.stringify(mode)}`);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return { sink, namespace: env["NAMESPACE"] ?? kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? "default", mode, kubeConfig };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** All Members of the namespace, page by page, and the resourceVersion of that snapshot. */
async function listMembers(custom: CustomObjectsApi, namespace: string): Promise<Listing> {
  const items: WatchedObject[] = [];
  let resourceVersion = "";
  let next: string | undefined;
  do {
    const page: unknown = await custom.listNamespacedCustomObject({
      group: MEMBER_GROUP,
      version: MEMBER_VERSION,
      namespace,
      plural: MEMBER_PLURAL,
      limit: 500,
      ...(next === undefined ? {} : { _continue: next }),
    });
    if (!isRecord(page)) throw new Error("the Member list is not an object");
    // Every page of one list carries the first page's snapshot version.
    resourceVersion ||= resourceVersionOf(page) ?? "";
    const listed = Array.isArray(page["items"]) ? (page["items"] as unknown[]) : [];
    for (const item of listed) {
      // List items may lack apiVersion and kind, which the events need.
      if (isRecord(item)) items.push({ apiVersion: MEMBER_API_VERSION, kind: MEMBER_KIND, ...item });
    }
    const metadata = page["metadata"];
    const token = isRecord(metadata) ? metadata["continue"] : undefined;
    next = typeof token === "string" && token !== "" ? token : undefined;
  } while (next !== undefined);
  return { resourceVersion, items };
}

export async function runSource(options: SourceOptions, signal: AbortSignal): Promise<void> {
  const level = process.env["LOG_LEVEL"] ?? "info";
  const logger = createLogger({ level: isLevel(level) ? level : "info" });
  const { kubeConfig, namespace, mode, sink } = options;
  const server = kubeConfig.getCurrentCluster()?.server ?? "";

  const send = async (change: WatchChange, object: WatchedObject): Promise<void> => {
    const event = memberCloudEvent(change, object, mode, server);
    const { headers, body } = toBinaryRequest(event);
    const fields = { eventId: event.id, eventType: event.type, member: nameOf(object), resourceVersion: resourceVersionOf(object) };
    for (let attempt = 0; attempt <= 5; attempt++) {
      if (attempt > 0) await sleep(50 * 2 ** (attempt - 1));
      try {
        const res = await fetch(sink, { method: "POST", headers, body, signal });
        await res.arrayBuffer();
        if (res.ok) {
          logger.info("event sent", { ...fields, status: res.status });
          return;
        }
        if (!RETRIED.has(res.status)) {
          logger.warn(`sink refused the event with ${res.status}; dropped`, fields);
          return;
        }
      } catch (err) {
        if (signal.aborted) return;
        logger.debug(`send failed: ${errorText(err)}`, fields);
      }
    }
    logger.warn("sink did not take the event after 5 retries; dropped", fields);
  };
  const queue = createSendQueue(send, (err, change, object) => {
    logger.warn(`event dropped: ${errorText(err)}`, { change, member: nameOf(object), resourceVersion: resourceVersionOf(object) });
  });

  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  try {
    await watchLoop(
      {
        path: `/apis/${MEMBER_GROUP}/${MEMBER_VERSION}/namespaces/${namespace}/${MEMBER_PLURAL}`,
        list: () => listMembers(custom, namespace),
        watcher: new Watch(kubeConfig),
        queue,
        logger,
        startMessage: `watching members in namespace ${namespace}`,
        startFields: { mode, sink },
      },
      signal,
    );
  } finally {
    logger.flush();
  }
}

if (import.meta.main) {
  const controller = new AbortController();
  process.once("SIGTERM", () => controller.abort());
  process.once("SIGINT", () => controller.abort());
  const fatal = (err: unknown): never => {
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: `fatal: ${errorText(err)}` })}\n`);
    process.exit(1);
  };
  let options: SourceOptions | undefined;
  try {
    options = optionsFromEnv(process.env);
  } catch (err) {
    fatal(err);
  }
  if (options !== undefined) runSource(options, controller.signal).then(() => process.exit(0), fatal);
}
