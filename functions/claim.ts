// Claim, then say: brings one Member to what next-step.ts says it should be,
// one conditional write at a time. The status write that records a greeting is
// its commit point: it carries the resourceVersion the decision was made from,
// so of two deliveries of one change only one can win; the loser gets a
// conflict, reads the Member again, decides again from what it is now (by then
// in step: nothing to say) and never retries a write blindly.
import { withDeadline } from "./deadline.ts";
import { KubeError } from "./kube-errors.ts";
import type { KubeApi, MemberStatus } from "./kube-client.ts";
import { eventName, eventReasons, writePendingEvent } from "./recorder.ts";
import { nextStep, type Policy } from "./next-step.ts";
import type { Greeting } from "./greeting.ts";
import type { Logger } from "./logger.ts";
import { noMetrics, type Metrics } from "./metrics.ts";
import type { RequestScope } from "./request-scope.ts";
import type { Span } from "./trace-context.ts";
import { parseMember, type JsonObject, type Member, type MemberRef } from "./member.ts";

export interface Claimed {
  readonly greeting: Greeting;
  /** The Member as the convergence left it (as the claim wrote it, if it went meanwhile). */
  readonly member: Member;
}

export interface ClaimOptions {
  /** The API, its calls sent as children of `span` when there is one. */
  readonly api: (span?: Span) => Promise<KubeApi>;
  readonly policy: Policy;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Writes one convergence may make (conflicts included) before it gives up for now. */
  readonly maxWrites?: number;
  /** Deadline of the read that checks whether a claim whose answer was lost was written. */
  readonly verifyTimeoutMs?: number;
  readonly metrics?: Metrics;
  /** Whether this process writes (or wrote) the owed Event of that name itself (EventRecorder.handles). */
  readonly handlesEvent?: (eventName: string) => boolean;
}

/** `scope`: the request that asked, whose logger and span the convergence's lines and calls carry. */
export interface ConvergeOptions {
  /**
   * Write the Event of a claim made here before returning, instead of leaving
   * it to the recorder: the resync does, so that a resync ends with its Members
   * converged, Events included, at the pace of its own bounded workers rather
   * than with thousands of Events queued behind it.
   */
  readonly writeEvents?: boolean;
}

export type Converge = (start: Member | MemberRef, signal: AbortSignal, scope?: RequestScope, options?: ConvergeOptions) => Promise<Claimed | undefined>;

function isFull(start: Member | MemberRef): start is Member {
  return "team" in start;
}

/**
 * The claim: what is said, when, and the Kubernetes Event it owes, by a name
 * unique to this claim. The mark stays until the Event exists, so an Event
 * that a crash or an outage kept from being written is written by the next
 * convergence of this Member (an event, or the resync).
 */
function statusFor(greeting: Greeting, member: Member, time: Date): MemberStatus {
  const at = time.toISOString();
  const observed = member.generation === undefined ? {} : { observedGeneration: member.generation };
  const pendingEvent = { name: eventName(greeting, member, `${member.uid ?? ""}/${at}`), reason: eventReasons[greeting.reason] };
  if (greeting.reason === "farewell") {
    return { team: member.recordedTeam ?? member.team, greeting: greeting.text, greetedAt: at, farewellAt: at, ...observed, pendingEvent };
  }
  return { team: member.team, greeting: greeting.text, greetedAt: at, ...observed, pendingEvent };
}

export function createConverge(options: ClaimOptions): Converge {
  const { api, policy, now } = options;
  const maxWrites = options.maxWrites ?? 5;
  const verifyTimeoutMs = options.verifyTimeoutMs ?? 2_000;
  const metrics = options.metrics ?? noMetrics;

  const read = async (kube: () => Promise<KubeApi>, ref: MemberRef, signal: AbortSignal): Promise<Member | undefined> => {
    const object = await (await kube()).getMember(ref, signal);
    return object === undefined ? undefined : parseMember(object, ref.namespace);
  };
  const parsed = (object: JsonObject, ref: MemberRef): Member => parseMember(object, ref.namespace);

  /**
   * A claim whose answer was lost (timed out, connection reset) may still have
   * been written. The status it wrote is unique to it (the greeting and the
   * millisecond it was decided), so one fresh read, on a deadline of its own,
   * tells whether it is ours to say; if that read fails too, the sender's
   * retry decides again from whatever the Member then records.
   */
  const writeClaim = async (
    kube: () => Promise<KubeApi>,
    logger: Logger,
    ref: MemberRef,
    version: string,
    status: MemberStatus,
    signal: AbortSignal,
  ): Promise<Member> => {
    try {
      return parsed(await (await kube()).patchMemberStatus(ref, version, status, signal), ref);
    } catch (err) {
      if (err instanceof KubeError && err.kind === "conflict") metrics.claimLost();
      if (!(err instanceof KubeError && err.kind === "unavailable")) throw err;
      const now = await withDeadline(verifyTimeoutMs, (deadline) => read(kube, ref, deadline)).catch(() => undefined);
      if (now !== undefined && now.recordedGreeting === status.greeting && now.recordedAt === status.greetedAt) {
        logger.info("the claim's answer was lost, but the claim was written", { member: ref.name, namespace: ref.namespace });
        return now;
      }
      throw err;
    }
  };

  return async (start, signal, scope, how = {}) => {
    const logger = scope?.logger ?? options.logger;
    const kube = (): Promise<KubeApi> => api(scope?.span);
    const ref: MemberRef = { name: start.name, namespace: start.namespace };
    // The event's copy decides when it names its version; otherwise read it.
    let member = isFull(start) && start.resourceVersion !== undefined ? start : await read(kube, ref, signal);
    if (member === undefined) logger.info("member no longer exists, nothing to greet", { member: ref.name, namespace: ref.namespace });
    let claimed: Claimed | undefined;
    for (let writes = 0; member !== undefined; ) {
      const step = nextStep(member, policy);
      if (step.kind === "none") break;
      // One greeting per convergence: whatever the rules say next is for a later one.
      if (step.kind === "claim" && claimed !== undefined) break;
      // The Event of the claim just made is written off the reply path (recorder.ts), unless
      // the Member is on its way out: then before its finalizer goes, and the mark with it.
      if (step.kind === "record-event" && claimed !== undefined && !member.deleting && how.writeEvents !== true) break;
      // The echo of a claim made here: its Event and the mark are this process's to write (or were written), no API call needed.
      if (step.kind === "record-event" && options.handlesEvent?.(step.name) === true) {
        logger.debug("the owed Event is written here already", { member: ref.name, namespace: ref.namespace, event: step.name });
        break;
      }
      if (writes++ === maxWrites) {
        const message = `member ${ref.namespace}/${ref.name} kept changing: ${maxWrites} writes without converging`;
        if (claimed === undefined) throw new KubeError("conflict", message);
        // Said is said: what is left (a finalizer to release) waits for a later event or resync.
        logger.warn(`after the greeting, ${step.kind} was left undone: ${message}`, { member: ref.name, namespace: ref.namespace });
        break;
      }
      const version = member.resourceVersion;
      if (version === undefined) throw new KubeError("rejected", `member ${ref.namespace}/${ref.name} has no resourceVersion`);
      try {
        if (step.kind === "claim") {
          const status = statusFor(step.greeting, member, now());
          member = await writeClaim(kube, logger, ref, version, status, signal);
          claimed = { greeting: step.greeting, member };
        } else if (step.kind === "record-event") {
          member = parsed(await writePendingEvent(await kube(), member, step, now(), { logger, refused: "give-up", signal }), ref);
          logger.debug("owed Event written", { member: ref.name, namespace: ref.namespace, event: step.name });
        } else {
          member = parsed(await (await kube()).patchMemberFinalizers(ref, version, step.finalizers, signal), ref);
          logger.debug(`finalizers set: ${step.why}`, { member: ref.name, namespace: ref.namespace });
        }
      } catch (err) {
        try {
          if (err instanceof KubeError && err.kind === "conflict") {
            logger.debug("member changed meanwhile: reading it again", { member: ref.name, namespace: ref.namespace, step: step.kind });
            member = await read(kube, ref, signal);
            continue;
          }
          if (err instanceof KubeError && err.kind === "not-found") break;
          throw err;
        } catch (failure) {
          // Said is said: a later event or resync finishes what is left.
          if (claimed === undefined) throw failure;
          logger.warn(`after the greeting, ${step.kind} failed: ${failure instanceof Error ? failure.message : String(failure)}`, {
            member: ref.name,
            namespace: ref.namespace,
          });
          break;
        }
      }
    }
    // The Member as the convergence left it: the recorder looks at what is still owed.
    return claimed === undefined ? undefined : { ...claimed, member: member ?? claimed.member };
  };
}
