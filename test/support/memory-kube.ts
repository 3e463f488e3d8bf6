// An in-memory KubeApi (functions/kube-client.ts) that behaves like the API
// server where the greeter depends on it: every write bumps resourceVersion;
// conditional writes with a stale resourceVersion are conflicts; a deleted
// object with finalizers is held (deletionTimestamp) until the last finalizer
// is removed; lists come in pages with continue tokens; Events are idempotent
// by name. Failures can be injected per operation, before a write (a
// concurrent writer), instead of a call (an error), or after a write (an
// answer lost). Status writes are JSON merge patches (RFC 7386): null removes
// a field. Unit tests of claim.ts, resync.ts, recorder.ts and handler.ts
// use it; the real client is tested against a real API server in test/e2e/.
import type { KubeApi, MemberEvent, MemberPage, StatusPatch } from "../../functions/kube-client.ts";
import { KubeError, type KubeFailure } from "../../functions/kube-errors.ts";
import { createLogger, type Logger } from "../../functions/logger.ts";
import { MEMBER_API_VERSION, MEMBER_KIND, type JsonObject, type Member, type MemberRef } from "../../functions/member.ts";

export type Operation = "getMember" | "listMembers" | "patchMemberStatus" | "patchMemberFinalizers" | "createEvent";
export type WriteOperation = Extract<Operation, "patchMemberStatus" | "patchMemberFinalizers" | "createEvent">;

/** What happened to one write call, in order of the calls. */
export interface WriteRecord {
  readonly op: WriteOperation;
  readonly name: string;
  /** The precondition the caller sent (undefined for createEvent). */
  readonly resourceVersion: string | undefined;
  readonly result: "ok" | "conflict" | "not-found" | "rejected" | "injected" | "answer-lost" | "aborted";
}

/**
 * Runs just before a call is served: before a write's precondition is checked
 * (a concurrent writer), or before a read answers (a change made meanwhile).
 * `ref` is the Member the call is about (for listMembers: the namespace, name "").
 */
export type CallHook = (kube: MemoryKube, ref: MemberRef) => void | Promise<void>;

export interface NewMember {
  readonly namespace?: string;
  /** spec.memberOf; undefined: no spec. */
  readonly team?: string | undefined;
  /** The status as the greeter would have written it; undefined: never greeted. */
  readonly status?: JsonObject | undefined;
  readonly finalizers?: readonly string[];
}

type Mutable = { [key: string]: unknown };

const key = (namespace: string, name: string): string => `${namespace}/${name}`;

function asMutable(value: unknown): Mutable {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Mutable) : {};
}

/** A JSON merge patch (RFC 7386), as the API server applies one: null removes, objects merge, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return structuredClone(patch);
  const merged: Mutable = { ...asMutable(target) };
  for (const [field, value] of Object.entries(patch)) {
    if (value === null) delete merged[field];
    else merged[field] = mergePatch(merged[field], value);
  }
  return merged;
}

function finalizersOf(object: Mutable): string[] {
  const list = asMutable(object["metadata"])["finalizers"];
  return Array.isArray(list) ? list.filter((f): f is string => typeof f === "string") : [];
}

export class MemoryKube implements KubeApi {
  /** Calls per operation, failed ones included. */
  readonly calls: Record<Operation, number> = { getMember: 0, listMembers: 0, patchMemberStatus: 0, patchMemberFinalizers: 0, createEvent: 0 };
  readonly writes: WriteRecord[] = [];
  /** The pages asked for, in order. */
  readonly pages: { readonly namespace: string; readonly limit: number; readonly continue: string | undefined }[] = [];
  /** Final objects of Members that are gone, in the order they went (what a delete event carries). */
  readonly deleted: JsonObject[] = [];

  readonly #objects = new Map<string, Mutable>();
  readonly #events = new Map<string, MemberEvent>();
  readonly #failures = new Map<Operation, KubeError[]>();
  readonly #lost = new Map<WriteOperation, number>();
  readonly #hooks = new Map<Operation, { hook: CallHook; times: number }[]>();
  readonly #now: () => Date;
  #version = 100;
  #uids = 0;

  constructor(options: { readonly now?: () => Date } = {}) {
    this.#now = options.now ?? (() => new Date("2026-11-25T09:00:00Z"));
  }

  // ---- the cluster as others change it (no hooks, no failures, not counted) ----

  /** Creates a Member as `kubectl apply` would, and returns it as stored. */
  add(name: string, options: NewMember = {}): JsonObject {
    const namespace = options.namespace ?? "default";
    return this.create({
      apiVersion: MEMBER_API_VERSION,
      kind: MEMBER_KIND,
      metadata: { name, namespace, ...(options.finalizers === undefined ? {} : { finalizers: [...options.finalizers] }) },
      ...(options.team === undefined ? {} : { spec: { memberOf: options.team } }),
      ...(options.status === undefined ? {} : { status: structuredClone(options.status) }),
    });
  }

  /** Stores any object (even one that is not a valid Member) under its metadata.name and namespace. */
  create(object: JsonObject): JsonObject {
    const stored = structuredClone(object) as Mutable;
    const metadata = asMutable(stored["metadata"]);
    stored["metadata"] = metadata;
    const name = String(metadata["name"]);
    const namespace = typeof metadata["namespace"] === "string" ? metadata["namespace"] : "default";
    if (this.#objects.has(key(namespace, name))) throw new Error(`memory-kube: ${namespace}/${name} exists already`);
    metadata["namespace"] = namespace;
    metadata["uid"] ??= `uid-${name}-${++this.#uids}`;
    metadata["generation"] ??= 1;
    metadata["creationTimestamp"] ??= this.#now().toISOString();
    metadata["resourceVersion"] = this.#bump();
    this.#objects.set(key(namespace, name), stored);
    return structuredClone(stored);
  }

  /** The Member as stored now, or undefined. */
  member(name: string, namespace = "default"): JsonObject | undefined {
    const object = this.#objects.get(key(namespace, name));
    return object === undefined ? undefined : structuredClone(object);
  }

  /** The Member's status as stored now. */
  status(name: string, namespace = "default"): JsonObject | undefined {
    const status = this.#objects.get(key(namespace, name))?.["status"];
    return status === undefined ? undefined : structuredClone(asMutable(status));
  }

  /** The Member's resourceVersion now. */
  version(name: string, namespace = "default"): string | undefined {
    const value = asMutable(this.#objects.get(key(namespace, name))?.["metadata"])["resourceVersion"];
    return typeof value === "string" ? value : undefined;
  }

  /** A spec change (`kubectl edit`): spec.memberOf, generation and resourceVersion. */
  setTeam(name: string, team: string | undefined, namespace = "default"): JsonObject {
    const object = this.#must(namespace, name);
    if (team === undefined) delete object["spec"];
    else object["spec"] = { ...asMutable(object["spec"]), memberOf: team };
    const metadata = asMutable(object["metadata"]);
    metadata["generation"] = Number(metadata["generation"] ?? 0) + 1;
    metadata["resourceVersion"] = this.#bump();
    return structuredClone(object);
  }

  /** A change to something the greeter does not read (a label): only resourceVersion moves. */
  touch(name: string, namespace = "default"): JsonObject {
    const object = this.#must(namespace, name);
    const metadata = asMutable(object["metadata"]);
    metadata["labels"] = { ...asMutable(metadata["labels"]), touched: String(this.#version) };
    metadata["resourceVersion"] = this.#bump();
    return structuredClone(object);
  }

  /** Another writer's status write (a merge patch: null removes), unconditional. */
  writeStatus(name: string, status: JsonObject, namespace = "default"): JsonObject {
    const object = this.#must(namespace, name);
    object["status"] = mergePatch(object["status"], status);
    asMutable(object["metadata"])["resourceVersion"] = this.#bump();
    return structuredClone(object);
  }

  /**
   * `kubectl delete`: with finalizers the object is held, marked with
   * deletionTimestamp (generation moves, as the API server does); without,
   * it goes. Returns the object as it then is (the final object when gone).
   */
  delete(name: string, namespace = "default"): JsonObject {
    const object = this.#must(namespace, name);
    const metadata = asMutable(object["metadata"]);
    if (finalizersOf(object).length > 0) {
      if (metadata["deletionTimestamp"] === undefined) {
        metadata["deletionTimestamp"] = this.#now().toISOString();
        metadata["generation"] = Number(metadata["generation"] ?? 0) + 1;
        metadata["resourceVersion"] = this.#bump();
      }
      return structuredClone(object);
    }
    return this.#remove(namespace, name, object);
  }

  /** The Events created, in order. */
  events(): MemberEvent[] {
    return [...this.#events.values()];
  }

  // ---- fault injection ----

  /** The next `times` calls of `op` throw this error (or a KubeError of this kind) without doing anything. */
  failNext(op: Operation, error: KubeError | KubeFailure, times = 1): this {
    const list = this.#failures.get(op) ?? [];
    for (let i = 0; i < times; i++) list.push(typeof error === "string" ? new KubeError(error, `injected ${error} for ${op}`) : error);
    this.#failures.set(op, list);
    return this;
  }

  /** The next `times` successful writes of `op` are applied, then throw unavailable: the answer was lost. */
  loseAnswer(op: WriteOperation, times = 1): this {
    this.#lost.set(op, (this.#lost.get(op) ?? 0) + times);
    return this;
  }

  /** Runs `hook` just before each of the next `times` calls of `op` is served (a write's precondition not yet checked). */
  before(op: Operation, hook: CallHook, times = 1): this {
    const list = this.#hooks.get(op) ?? [];
    list.push({ hook, times });
    this.#hooks.set(op, list);
    return this;
  }

  // ---- KubeApi ----

  async getMember(ref: MemberRef, signal?: AbortSignal): Promise<JsonObject | undefined> {
    this.#enter("getMember", signal);
    await this.#runHooks("getMember", ref);
    return this.member(ref.name, ref.namespace);
  }

  async listMembers(namespace: string, page: { readonly limit: number; readonly continue?: string | undefined }, signal?: AbortSignal): Promise<MemberPage> {
    this.pages.push({ namespace, limit: page.limit, continue: page.continue });
    this.#enter("listMembers", signal);
    await this.#runHooks("listMembers", { name: "", namespace });
    let after = "";
    if (page.continue !== undefined) {
      const decoded = Buffer.from(page.continue, "base64url").toString("utf8");
      const [ns, last] = decoded.split("\n");
      if (ns !== namespace || last === undefined) throw new KubeError("rejected", `list members in ${namespace}: invalid continue token`);
      after = last;
    }
    const names = [...this.#objects.entries()]
      .filter(([k]) => k.startsWith(`${namespace}/`))
      .map(([k, object]) => [k.slice(namespace.length + 1), object] as const)
      .filter(([name]) => name > after)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const items = names.slice(0, page.limit > 0 ? page.limit : names.length);
    const last = items.at(-1)?.[0];
    const more = items.length < names.length && last !== undefined;
    return {
      items: items.map(([, object]) => structuredClone(object)),
      continue: more ? Buffer.from(`${namespace}\n${last}`, "utf8").toString("base64url") : undefined,
    };
  }

  async patchMemberStatus(ref: MemberRef, resourceVersion: string, status: StatusPatch, signal?: AbortSignal): Promise<JsonObject> {
    return this.#write("patchMemberStatus", ref, resourceVersion, signal, (object) => {
      // A merge patch: `{ pendingEvent: null }` removes the mark, as the API server does.
      object["status"] = mergePatch(object["status"], status);
      asMutable(object["metadata"])["resourceVersion"] = this.#bump();
      return object;
    });
  }

  async patchMemberFinalizers(ref: MemberRef, resourceVersion: string, finalizers: readonly string[], signal?: AbortSignal): Promise<JsonObject> {
    return this.#write("patchMemberFinalizers", ref, resourceVersion, signal, (object) => {
      const metadata = asMutable(object["metadata"]);
      const before = finalizersOf(object);
      if (metadata["deletionTimestamp"] !== undefined) {
        if (finalizers.some((f) => !before.includes(f))) {
          throw new KubeError(
            "rejected",
            `patch finalizers of member ${ref.namespace}/${ref.name}: no new finalizers can be added if the object is being deleted`,
          );
        }
        if (finalizers.length === 0) {
          metadata["finalizers"] = [];
          return this.#remove(ref.namespace, ref.name, object) as Mutable;
        }
      }
      metadata["finalizers"] = [...finalizers];
      metadata["resourceVersion"] = this.#bump();
      return object;
    });
  }

  async createEvent(event: MemberEvent, signal?: AbortSignal): Promise<void> {
    const ref = { name: event.member.name, namespace: event.member.namespace };
    const record = (result: WriteRecord["result"]) => this.writes.push({ op: "createEvent", name: event.name, resourceVersion: undefined, result });
    try {
      this.#enter("createEvent", signal);
    } catch (err) {
      record(signal?.aborted === true ? "aborted" : "injected");
      throw err;
    }
    await this.#runHooks("createEvent", ref);
    const k = key(event.member.namespace, event.name);
    // AlreadyExists is success: the client treats a 409 on create that way.
    if (!this.#events.has(k)) this.#events.set(k, { ...event, member: { ...event.member } });
    if (this.#takeLost("createEvent")) {
      record("answer-lost");
      throw new KubeError("unavailable", `create event for member ${ref.namespace}/${ref.name}: no answer in time (answer lost)`);
    }
    record("ok");
  }

  // ---- internals ----

  #bump(): string {
    return String(++this.#version);
  }

  #must(namespace: string, name: string): Mutable {
    const object = this.#objects.get(key(namespace, name));
    if (object === undefined) throw new Error(`memory-kube: no member ${namespace}/${name}`);
    return object;
  }

  #remove(namespace: string, name: string, object: Mutable): JsonObject {
    this.#objects.delete(key(namespace, name));
    asMutable(object["metadata"])["resourceVersion"] = this.#bump();
    const final = structuredClone(object);
    this.deleted.push(final);
    return structuredClone(final);
  }

  /** Counts the call, honours the caller's signal, and throws an injected failure. */
  #enter(op: Operation, signal: AbortSignal | undefined): void {
    this.calls[op]++;
    if (signal?.aborted === true) throw new KubeError("unavailable", `${op}: no answer in time (aborted)`);
    const failure = this.#failures.get(op)?.shift();
    if (failure !== undefined) throw failure;
  }

  #takeLost(op: WriteOperation): boolean {
    const lost = this.#lost.get(op) ?? 0;
    if (lost === 0) return false;
    this.#lost.set(op, lost - 1);
    return true;
  }

  async #runHooks(op: Operation, ref: MemberRef): Promise<void> {
    // Always at least one turn: concurrent callers interleave as they would over the network.
    await Promise.resolve();
    const list = this.#hooks.get(op) ?? [];
    const due = list.filter((h) => h.times > 0);
    this.#hooks.set(op, due);
    for (const entry of due) {
      entry.times--;
      await entry.hook(this, ref);
    }
  }

  async #write(
    op: "patchMemberStatus" | "patchMemberFinalizers",
    ref: MemberRef,
    resourceVersion: string,
    signal: AbortSignal | undefined,
    apply: (object: Mutable) => JsonObject,
  ): Promise<JsonObject> {
    const record = (result: WriteRecord["result"]) => this.writes.push({ op, name: ref.name, resourceVersion, result });
    try {
      this.#enter(op, signal);
    } catch (err) {
      record(signal?.aborted === true ? "aborted" : "injected");
      throw err;
    }
    await this.#runHooks(op, ref);
    const object = this.#objects.get(key(ref.namespace, ref.name));
    if (object === undefined) {
      record("not-found");
      throw new KubeError("not-found", `${op} ${ref.namespace}/${ref.name}: not found`);
    }
    if (asMutable(object["metadata"])["resourceVersion"] !== resourceVersion) {
      record("conflict");
      throw new KubeError("conflict", `${op} ${ref.namespace}/${ref.name}: the object was changed meanwhile (409)`);
    }
    let written: JsonObject;
    try {
      written = apply(object);
    } catch (err) {
      record("rejected");
      throw err;
    }
    if (this.#takeLost(op)) {
      record("answer-lost");
      throw new KubeError("unavailable", `${op} ${ref.namespace}/${ref.name}: no answer in time (answer lost)`);
    }
    record("ok");
    return structuredClone(written);
  }
}

/** A parsed Member for pure tests: patrick in default, of the team blue, never greeted, unless overridden. */
export function memberFixture(overrides: Partial<Member> = {}): Member {
  return {
    name: "patrick",
    namespace: "default",
    team: "blue",
    recordedTeam: undefined,
    uid: "uid-patrick",
    resourceVersion: "7",
    generation: 1,
    deleting: false,
    finalizers: [],
    farewellRecorded: false,
    pendingEvent: undefined,
    recordedGreeting: undefined,
    recordedAt: undefined,
    ...overrides,
  };
}

export interface LogRecord {
  readonly [field: string]: unknown;
  readonly level: string;
  readonly msg: string;
}

/** A debug-level logger whose lines are kept, parsed, without their time. */
export function captureLogs(): { logger: Logger; logs: () => LogRecord[] } {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: { write: (chunk) => void lines.push(...chunk.split("\n").filter((l) => l !== "")) } });
  const logs = (): LogRecord[] => {
    logger.flush();
    return lines.map((line) => {
      const { time: _time, ...rest } = JSON.parse(line) as LogRecord & { time: string };
      return rest;
    });
  };
  return { logger, logs };
}
