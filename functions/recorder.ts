// Records a greeting that was claimed as a core/v1 Event on the Member, so
// that `kubectl describe member` shows it. The claim (the status write) is the
// commit point, so the Event is written after it and does not hold up the
// reply; shutdown waits for what is still being written (`settle`).
//
// The Event's name is derived from the claim (the Member's uid and the
// resourceVersion the claim wrote), so a retried create of one greeting finds
// it exists (409, success) instead of making a second Event.
import { createHash } from "node:crypto";
import type { Greeting, Reason } from "./greeting.ts";
import type { KubeApi } from "./kube-client.ts";
import { KubeError } from "./kube-errors.ts";
import type { Logger } from "./logger.ts";
import type { Member, MemberRef } from "./member.ts";

export const eventReasons: Readonly<Record<Reason, string>> = {
  welcome: "Welcomed",
  "team-change": "TeamChanged",
  farewell: "SaidFarewell",
};

export interface EventRecorder {
  /**
   * Starts writing the Event for a greeting; never throws, never waits. `key`
   * names the greeting where no claim does (a farewell from a delete event:
   * the event's id), so that its Event is unique to it.
   */
  record(greeting: Greeting, member: Member | MemberRef, key?: string): void;
  /** Resolves once every Event started so far is written or given up. */
  settle(): Promise<void>;
}

export interface RecorderOptions {
  readonly api: () => Promise<KubeApi>;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Pauses between attempts while the API server is unavailable; its length is the number of retries. */
  readonly retryDelaysMs?: readonly number[];
  readonly sleep?: (ms: number) => Promise<void>;
  /** Events written at once; the rest wait their turn (a resync may claim thousands in a row). */
  readonly concurrency?: number;
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
  const suffix = createHash("sha256").update(`${identity}/${greeting.reason}/${greeting.text}`).digest("hex").slice(0, 16);
  // A cut Member name may end in '-' or '.', which may not stand before the '.' that follows.
  const prefix = member.name.slice(0, NAME_MAX - suffix.length - 1).replace(/[-.]+$/, "");
  return `${prefix}.${suffix}`;
}

export function createRecorder(options: RecorderOptions): EventRecorder {
  const { api, logger, now } = options;
  const delays = options.retryDelaysMs ?? [100, 400, 1600];
  const sleep = options.sleep ?? defaultSleep;
  const inFlight = new Set<Promise<void>>();
  const limit = options.concurrency ?? 8;
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

  const write = async (greeting: Greeting, member: Member | MemberRef, key: string | undefined): Promise<void> => {
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
        await (await api()).createEvent(event);
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

  return {
    record(greeting, member, key) {
      const written: Promise<void> = turn()
        .then(() => write(greeting, member, key))
        .finally(() => {
          done();
          inFlight.delete(written);
        });
      inFlight.add(written);
    },
    async settle() {
      while (inFlight.size > 0) await Promise.all(inFlight);
    },
  };
}
