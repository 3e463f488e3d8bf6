// The level-triggered rules where greetings are recorded: from a Member as it
// is now (spec, status, finalizers, deletion), the one write that brings it
// closer to what it should be. Pure; functions/claim.ts performs the steps,
// each under a resourceVersion precondition, and asks again after each.
import { farewellText, greetingForState, type Greeting } from "./greeting.ts";
import type { Member } from "./member.ts";

/** Holds a deleted Member back until its farewell is said (opt-in: FAREWELLS=finalizer). */
export const FAREWELL_FINALIZER = "helloworld.apimeister.com/farewell";

export interface Policy {
  /** Add the farewell finalizer to live Members. */
  readonly finalizer: boolean;
}

export type Step =
  | { readonly kind: "none"; readonly why: string }
  /** Write status to record the greeting: the commit point. The greeting is said only once this write succeeded. */
  | { readonly kind: "claim"; readonly greeting: Greeting }
  | { readonly kind: "set-finalizers"; readonly finalizers: readonly string[]; readonly why: string }
  /** Write the Kubernetes Event an earlier claim recorded as owed (status.pendingEvent), then clear the mark. */
  | { readonly kind: "record-event"; readonly name: string; readonly reason: string; readonly message: string };

export function nextStep(member: Member, policy: Policy): Step {
  const ours = member.finalizers.includes(FAREWELL_FINALIZER);
  if (member.deleting) {
    // Whatever the policy is now: a Member that carries our finalizer must be
    // let go, or its deletion hangs.
    if (!ours) return { kind: "none", why: "being deleted; the delete event says farewell" };
    // An Event still owed (a crash before it was written) first: the farewell's claim would replace its mark.
    if (member.pendingEvent !== undefined) return recordEvent(member, member.pendingEvent);
    if (!member.farewellRecorded) {
      return {
        kind: "claim",
        greeting: { text: farewellText(member.name), reason: "farewell", member: { name: member.name, namespace: member.namespace, team: member.team } },
      };
    }
    return { kind: "set-finalizers", finalizers: member.finalizers.filter((f) => f !== FAREWELL_FINALIZER), why: "farewell said: let the deletion finish" };
  }
  // First the finalizer, then the welcome: once greeted, a deletion cannot slip by unseen.
  if (policy.finalizer && !ours) {
    return { kind: "set-finalizers", finalizers: [...member.finalizers, FAREWELL_FINALIZER], why: "hold the Member for its farewell" };
  }
  // Before a new claim, which would replace the mark of the Event still owed.
  if (member.pendingEvent !== undefined) return recordEvent(member, member.pendingEvent);
  const greeting = greetingForState(member);
  if (greeting === undefined) return { kind: "none", why: "greeted already, team unchanged" };
  return { kind: "claim", greeting };
}

function recordEvent(member: Member, pending: { readonly name: string; readonly reason: string }): Step {
  return { kind: "record-event", name: pending.name, reason: pending.reason, message: member.recordedGreeting ?? "" };
}

/**
 * A delete event (the object is gone). Without the finalizer the farewell
 * cannot be claimed: it is said for each delete event received. With it, the
 * farewell was said and recorded before the object went; a final object that
 * records none (a Member from before the finalizer, or one whose finalizer
 * was removed by hand) still gets one. A bare reference cannot tell, so with
 * the finalizer it says nothing. A final object that records its farewell
 * gets no second one in either mode (the mode may have changed meanwhile).
 */
export function farewellOnDelete(member: Member | undefined, policy: Policy): boolean {
  // Recorded: said before the object went (by the finalizer, in this mode or an earlier one).
  if (member?.farewellRecorded === true) return false;
  return !policy.finalizer || member !== undefined;
}
