// Records a greeting as a Kubernetes Event on the Member, so that `kubectl
// describe member` shows it. The claim (the status write) is the commit point,
// so the Event is written after it and does not hold up the reply; shutdown
// waits for what is still being written (`settle`).
//
// A claim names its Event in status.pendingEvent (claim.ts). Once the Event
// exists the mark is cleared; an Event that a crash or an outage kept from
// being written is still owed, and the Member's next convergence writes it.
// The name is unique to the claim, so a retried create finds it exists (409,
// success) instead of making a second Event.
import { hash } from "node:crypto";
import type { Greeting, Reason } from "./greeting.ts";
import type { KubeApi } from "./kube-client.ts";
import { KubeError } from "./kube-errors.ts";
import type { Logger } from "./logger.ts";
import { parseMember, type JsonObject, type Member, type MemberRef } from "./member.ts";
import type { RequestScope } from "./request-scope.ts";
import type { Span } from "./trace-context.ts";

export const eventReasons: Readonly<Record<Reason, string>> = {
  welcome: "Welcomed",
  "team-change": "TeamChanged",
  farewell: "SaidFarewell",
};

export interface EventRecorder {
  /**
   * After a claim: writes the Event it owes (member.pendingEvent), then clears the mark. Never throws, never waits.
   * `scope`: the request whose greeting it is, whose logger and span the lines and calls carry; so for `record`.
   */
  recordPending(member: Member, scope?: RequestScope): void;
  /**
   * Starts writing the Event for a greeting; never throws, never waits. `key`
   * names the greeting where no claim does (a farewell from a delete event:
   * the event's id), so that its Event is unique to it.
   */
  record(greeting: Greeting, member: Member | MemberRef, key?: string, scope?: RequestScope): void;
  /**
   * Whether the Event a claim owes, by its name, is being written here or was
   * written here, its mark cleared. The claim's own status write comes back as
   * an event still carrying the mark: this answers it without an API call.
   */
  handles(eventName: string): boolean;
  /** Resolves once every Event started so far is written or given up. */
  settle(): Promise<void>;
}

export interface RecorderOptions {
  readonly api: (span?: Span) => Promise<KubeApi>;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Pauses between attempts while the API server is unavailable; its length is the number of retries. */
  readonly retryDelaysMs?: readonly number[];
  readonly sleep?: (ms: number) => Promise<void>;
  /** Events written at once; the rest wait their turn (a resync may claim thousands in a row). */
  readonly concurrency?: number;
  /** How many written Events `handles` remembers: enough to span the delay of a claim's echo in a burst. */
  readonly remember?: number;
  /**
   * Claims first: an owed Event waits until no claim was made for this long
   * (a burst is over), or until it has waited `maxDelayMs`; 0 writes at once.
   */
  readonly quietMs?: number;
  readonly maxDelayMs?: number;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Event names are DNS subdomains of at most 253 characters.
const NAME_MAX = 253;

/**
 * The Event's name for one greeting: stable across retries, unique per claim
 * (the Member's uid and the resourceVersion the claim wrote) or per `key`.
 */
export function eventName(greeting: Greeting, member: Member | MemberRef, key?: string): string {
  const full = "resourceVersion" in member ? member : undefined;
  const identity = key === undefined ? `${full?.uid ?? ""}/${full?.resourceVersion ?? ""}` : `key:${key}`;
  // One-shot: a Hash object per greeting cost several times the hashing itself.
  const suffix = hash("sha256", `${identity}/${greeting.reason}/${greeting.text}`, "hex").slice(0, 16);
  // A cut Member name may end in '-' or '.', which may not stand before the '.' that follows.
  const prefix = member.name.slice(0, NAME_MAX - suffix.length - 1).replace(/[-.]+$/, "");
  return `${prefix}.${suffix}`;
}

/**
 * Writes the Event a claim owes and clears the mark, under the resourceVersion
 * the Member had (409 if it changed meanwhile: the caller reads it again).
 * Returns the Member as written.
 *
 * `refused` says what a refused create (403, 422) means. Right after the claim
 * it may be a kube-apiserver still syncing its RBAC caches after a restart:
 * "retry", and if it stays refused the mark is left for a later convergence.
 * That later convergence gives it up ("give-up"): an Event refused for good (no
 * RBAC for events) must not hold the Member's later greetings, or its
 * finalizer, hostage.
 */
export async function writePendingEvent(
  kube: KubeApi,
  member: Member,
  pending: { readonly name: string; readonly reason: string; readonly message: string },
  time: Date,
  options: { readonly logger: Logger; readonly refused: "retry" | "give-up"; readonly signal?: AbortSignal },
): Promise<JsonObject> {
  const ref = { name: member.name, namespace: member.namespace };
  try {
    await kube.createEvent({ name: pending.name, member: { ...ref, uid: member.uid }, reason: pending.reason, message: pending.message, time }, options.signal);
  } catch (err) {
    if (!(err instanceof KubeError && err.kind === "rejected" && options.refused === "give-up")) throw err;
    options.logger.warn(`the Event this greeting owes was refused again, and is given up: ${err.message}`, { ...ref, event: pending.name });
  }
  if (member.resourceVersion === undefined) throw new KubeError("rejected", `member ${member.namespace}/${member.name} has no resourceVersion`);
  return kube.patchMemberStatus(ref, member.resourceVersion, { pendingEvent: null }, options.signal);
}

export function createRecorder(options: RecorderOptions): EventRecorder {
  const { api, now } = options;
  const delays = options.retryDelaysMs ?? [100, 400, 1600];
  const sleep = options.sleep ?? defaultSleep;
  const inFlight = new Set<Promise<void>>();
  const limit = options.concurrency ?? 8;
  const quietMs = options.quietMs ?? 250;
  const maxDelayMs = options.maxDelayMs ?? 5_000;
  // When the last claim was made, and who waits for the claims to stop (settle wakes them at once).
  let lastClaim = Number.NEGATIVE_INFINITY;
  let flushing = false;
  const writableAt = (queuedAt: number): number => (flushing ? Number.NEGATIVE_INFINITY : Math.min(lastClaim + quietMs, queuedAt + maxDelayMs));
  // Owed Events waiting for the claims to pause, oldest first, and the one
  // timer that wakes them: in a burst hundreds wait, and a timer each would
  // fire and re-arm every quietMs on the event loop that serves the claims.
  const waitingForQuiet: { readonly queuedAt: number; readonly go: () => void }[] = [];
  let quietTimer: ReturnType<typeof setTimeout> | undefined;
  const wakeQuiet = (): void => {
    quietTimer = undefined;
    const at = performance.now();
    // Oldest first, so those past their longest wait are a prefix; once the claims pause, all go.
    for (let first = waitingForQuiet[0]; first !== undefined && at >= writableAt(first.queuedAt); first = waitingForQuiet[0]) {
      waitingForQuiet.shift();
      first.go();
    }
    const next = waitingForQuiet[0];
    if (next !== undefined) quietTimer = setTimeout(wakeQuiet, writableAt(next.queuedAt) - at);
  };
  /**
   * Claims first. Each owed Event is two writes (the Event, the cleared mark)
   * the API server makes between two claims, and the cleared mark comes back
   * from the ApiServerSource as one more event queued before the next add. In
   * a burst of 200 creates through Knative's adapter, waiting until the claims
   * stop made the burst greeted ~15 % sooner, and kubectl's creates too
   * (docs/benchmarks.md).
   */
  const untilQuiet = (queuedAt: number): Promise<void> =>
    new Promise<void>((go) => {
      waitingForQuiet.push({ queuedAt, go });
      if (quietTimer === undefined) quietTimer = setTimeout(wakeQuiet, writableAt(queuedAt) - performance.now());
    });
  const remember = options.remember ?? 4096;
  // Owed Events being written, and the last ones written with their mark cleared (oldest first).
  const writingNames = new Set<string>();
  const written = new Set<string>();
  const wrote = (name: string): void => {
    written.add(name);
    for (const oldest of written) {
      if (written.size <= remember) break;
      written.delete(oldest);
    }
  };
  let writing = 0;
  const waiting: (() => void)[] = [];
  const turn = async (): Promise<void> => {
    if (writing < limit) {
      writing++;
      return;
    }
    // The slot is handed over directly by the write that ends.
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const done = (): void => {
    const next = waiting.shift();
    if (next === undefined) writing--;
    else next();
  };

  const write = async (greeting: Greeting, member: Member | MemberRef, key: string | undefined, scope: RequestScope | undefined): Promise<void> => {
    const logger = scope?.logger ?? options.logger;
    const uid = "uid" in member ? member.uid : undefined;
    const event = {
      name: eventName(greeting, member, key),
      member: { name: member.name, namespace: member.namespace, uid },
      reason: eventReasons[greeting.reason],
      message: greeting.text,
      time: now(),
    };
    const fields = { member: member.name, namespace: member.namespace, reason: event.reason };
    for (let attempt = 0; ; attempt++) {
      try {
        await (await api(scope?.span)).createEvent(event);
        return;
      } catch (err) {
        const delay = delays[attempt];
        if (err instanceof KubeError && err.kind === "unavailable" && delay !== undefined) {
          await sleep(delay);
          continue;
        }
        logger.warn(`recording the greeting as an Event failed: ${err instanceof Error ? err.message : String(err)}`, { ...fields, attempts: attempt + 1 });
        return;
      }
    }
  };

  /** The owed Event of a claim, retried while the API server is unavailable; a Member that changed meanwhile is read again. */
  const writePending = async (claimed: Member, scope: RequestScope | undefined): Promise<void> => {
    const logger = scope?.logger ?? options.logger;
    let member: Member | undefined = claimed;
    const owed = claimed.pendingEvent;
    if (owed === undefined) return;
    const fields = { member: claimed.name, namespace: claimed.namespace, reason: owed.reason };
    for (let attempt = 0; member?.pendingEvent?.name === owed.name; attempt++) {
      try {
        await writePendingEvent(await api(scope?.span), member, { ...owed, message: member.recordedGreeting ?? "" }, now(), { logger, refused: "retry" });
        wrote(owed.name);
        return;
      } catch (err) {
        // Gone meanwhile: the Event was created before the mark was to be cleared, and the mark went with the Member.
        if (err instanceof KubeError && err.kind === "not-found") {
          wrote(owed.name);
          return;
        }
        const delay = delays[attempt];
        // Unavailable, a conflict (read again), or refused (it may be RBAC caches still syncing): again, a few times.
        const again = err instanceof KubeError && delay !== undefined;
        if (!again) {
          // Still owed: the Member's next convergence (an event, or the resync) writes it.
          logger.warn(`recording the greeting as an Event failed: ${err instanceof Error ? err.message : String(err)}`, { ...fields, attempts: attempt + 1 });
          return;
        }
        if (err.kind !== "conflict") await sleep(delay);
        try {
          const object = await (await api(scope?.span)).getMember(claimed);
          member = object === undefined ? undefined : parseMember(object, claimed.namespace);
        } catch {
          // Try the write again with what we have; it says what is wrong.
        }
      }
    }
  };

  const enqueue = (run: () => Promise<void>): void => {
    const queuedAt = performance.now();
    // Not a tick later than needed: a write that may start now takes its turn at once.
    const written: Promise<void> = (queuedAt >= writableAt(queuedAt) ? turn() : untilQuiet(queuedAt).then(turn)).then(run).finally(() => {
      done();
      inFlight.delete(written);
    });
    inFlight.add(written);
  };

  return {
    recordPending(member, scope) {
      const name = member.pendingEvent?.name;
      if (name === undefined) return;
      writingNames.add(name);
      lastClaim = performance.now();
      enqueue(() => writePending(member, scope).finally(() => writingNames.delete(name)));
    },
    handles: (eventName) => writingNames.has(eventName) || written.has(eventName),
    record(greeting, member, key, scope) {
      enqueue(() => write(greeting, member, key, scope));
    },
    async settle() {
      // Shutting down: what waits for a quiet moment is written now.
      flushing = true;
      if (quietTimer !== undefined) clearTimeout(quietTimer);
      wakeQuiet();
      while (inFlight.size > 0) await Promise.all(inFlight);
    },
  };
}
