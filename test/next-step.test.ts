import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Member } from "../functions/member.ts";
import { FAREWELL_FINALIZER, farewellOnDelete, nextStep, type Policy, type Step } from "../functions/next-step.ts";
import { memberFixture as member } from "./support/memory-kube.ts";

const OTHER = "example.com/other";
const eventMode: Policy = { finalizer: false };
const finalizerMode: Policy = { finalizer: true };

const who = { name: "patrick", namespace: "default" };
/** status.pendingEvent: the Event a claim still owes. */
const mark = { name: "patrick.0123456789abcdef", reason: "Welcomed" };
const farewellMark = { name: "patrick.fedcba9876543210", reason: "SaidFarewell" };

describe("next-step: the level-triggered rules", () => {
  // [title, member, policy, expected step]
  const cases: [string, Member, Policy, Step][] = [
    // A Member being deleted.
    [
      "deleting without our finalizer: the delete event says farewell",
      member({ deleting: true, recordedTeam: "blue" }),
      finalizerMode,
      { kind: "none", why: "being deleted; the delete event says farewell" },
    ],
    [
      "deleting with only someone else's finalizer",
      member({ deleting: true, finalizers: [OTHER] }),
      eventMode,
      { kind: "none", why: "being deleted; the delete event says farewell" },
    ],
    [
      "deleting with our finalizer, farewell not recorded: claim the farewell",
      member({ deleting: true, finalizers: [FAREWELL_FINALIZER], recordedTeam: "blue" }),
      finalizerMode,
      { kind: "claim", greeting: { text: "sad to see you go patrick", reason: "farewell", member: { ...who, team: "blue" } } },
    ],
    [
      "the farewell's team is the spec's team now, not the recorded one",
      member({ deleting: true, finalizers: [FAREWELL_FINALIZER], team: "red", recordedTeam: "blue" }),
      finalizerMode,
      { kind: "claim", greeting: { text: "sad to see you go patrick", reason: "farewell", member: { ...who, team: "red" } } },
    ],
    [
      "deleting with our finalizer even when the policy is off now: farewell (or the deletion hangs)",
      member({ deleting: true, finalizers: [FAREWELL_FINALIZER] }),
      eventMode,
      { kind: "claim", greeting: { text: "sad to see you go patrick", reason: "farewell", member: { ...who, team: "blue" } } },
    ],
    [
      "farewell recorded: release our finalizer, keep the others in order",
      member({ deleting: true, finalizers: [OTHER, FAREWELL_FINALIZER, "z/last"], farewellRecorded: true }),
      finalizerMode,
      { kind: "set-finalizers", finalizers: [OTHER, "z/last"], why: "farewell said: let the deletion finish" },
    ],
    [
      "farewell recorded, ours the only one: release it",
      member({ deleting: true, finalizers: [FAREWELL_FINALIZER], farewellRecorded: true }),
      eventMode,
      { kind: "set-finalizers", finalizers: [], why: "farewell said: let the deletion finish" },
    ],
    // A live Member, finalizer mode: the finalizer comes first.
    [
      "finalizer mode, never greeted, no finalizer: add the finalizer before the welcome",
      member(),
      finalizerMode,
      { kind: "set-finalizers", finalizers: [FAREWELL_FINALIZER], why: "hold the Member for its farewell" },
    ],
    [
      "finalizer mode, greeted, no finalizer: add it, keeping the others",
      member({ finalizers: [OTHER], recordedTeam: "blue" }),
      finalizerMode,
      { kind: "set-finalizers", finalizers: [OTHER, FAREWELL_FINALIZER], why: "hold the Member for its farewell" },
    ],
    [
      "finalizer mode, finalizer held, never greeted: welcome",
      member({ finalizers: [FAREWELL_FINALIZER] }),
      finalizerMode,
      { kind: "claim", greeting: { text: "welcome patrick to the team blue", reason: "welcome", member: { ...who, team: "blue" } } },
    ],
    [
      "finalizer mode, finalizer held, in step: nothing",
      member({ finalizers: [FAREWELL_FINALIZER], recordedTeam: "blue" }),
      finalizerMode,
      { kind: "none", why: "greeted already, team unchanged" },
    ],
    [
      "finalizer mode, finalizer held, team changed",
      member({ finalizers: [FAREWELL_FINALIZER], team: "red", recordedTeam: "blue" }),
      finalizerMode,
      { kind: "claim", greeting: { text: "patrick moved from the team blue to the team red", reason: "team-change", member: { ...who, team: "red" } } },
    ],
    // A live Member, event mode.
    [
      "never greeted: welcome to the team",
      member(),
      eventMode,
      { kind: "claim", greeting: { text: "welcome patrick to the team blue", reason: "welcome", member: { ...who, team: "blue" } } },
    ],
    [
      "never greeted, no team: welcome by name",
      member({ team: "" }),
      eventMode,
      { kind: "claim", greeting: { text: "welcome patrick", reason: "welcome", member: { ...who, team: "" } } },
    ],
    ["greeted into blue, still blue: nothing", member({ recordedTeam: "blue" }), eventMode, { kind: "none", why: "greeted already, team unchanged" }],
    ["greeted with no team, still none: nothing", member({ team: "", recordedTeam: "" }), eventMode, { kind: "none", why: "greeted already, team unchanged" }],
    [
      "blue to red: team change",
      member({ team: "red", recordedTeam: "blue" }),
      eventMode,
      { kind: "claim", greeting: { text: "patrick moved from the team blue to the team red", reason: "team-change", member: { ...who, team: "red" } } },
    ],
    [
      "blue to none: left the team",
      member({ team: "", recordedTeam: "blue" }),
      eventMode,
      { kind: "claim", greeting: { text: "patrick left the team blue", reason: "team-change", member: { ...who, team: "" } } },
    ],
    [
      "none to green: welcome to the team",
      member({ team: "green", recordedTeam: "" }),
      eventMode,
      { kind: "claim", greeting: { text: "welcome patrick to the team green", reason: "welcome", member: { ...who, team: "green" } } },
    ],
    [
      "event mode leaves a finalizer of ours on a live Member alone",
      member({ finalizers: [FAREWELL_FINALIZER], recordedTeam: "blue" }),
      eventMode,
      { kind: "none", why: "greeted already, team unchanged" },
    ],
    // An Event still owed (status.pendingEvent): written before any new claim.
    [
      "a mark, in step: write the owed Event, named from the mark, worded from status.greeting",
      member({ recordedTeam: "blue", recordedGreeting: "welcome patrick to the team blue", pendingEvent: mark }),
      eventMode,
      { kind: "record-event", name: "patrick.0123456789abcdef", reason: "Welcomed", message: "welcome patrick to the team blue" },
    ],
    [
      "a mark and a team change: the owed Event before the new claim",
      member({ team: "red", recordedTeam: "blue", recordedGreeting: "welcome patrick to the team blue", pendingEvent: mark }),
      eventMode,
      { kind: "record-event", name: "patrick.0123456789abcdef", reason: "Welcomed", message: "welcome patrick to the team blue" },
    ],
    [
      "a mark, never greeted (status holds only the mark): the owed Event, with no message to give",
      member({ pendingEvent: mark }),
      eventMode,
      { kind: "record-event", name: "patrick.0123456789abcdef", reason: "Welcomed", message: "" },
    ],
    [
      "finalizer mode, a mark and a team change, finalizer held: the owed Event first",
      member({ finalizers: [FAREWELL_FINALIZER], team: "red", recordedTeam: "blue", recordedGreeting: "welcome patrick to the team blue", pendingEvent: mark }),
      finalizerMode,
      { kind: "record-event", name: "patrick.0123456789abcdef", reason: "Welcomed", message: "welcome patrick to the team blue" },
    ],
    [
      "finalizer mode, a mark, no finalizer: the finalizer still comes first",
      member({ recordedTeam: "blue", recordedGreeting: "welcome patrick to the team blue", pendingEvent: mark }),
      finalizerMode,
      { kind: "set-finalizers", finalizers: [FAREWELL_FINALIZER], why: "hold the Member for its farewell" },
    ],
    [
      "deleting with our finalizer, farewell recorded, its Event owed: write it before the finalizer goes",
      member({
        deleting: true,
        finalizers: [FAREWELL_FINALIZER],
        farewellRecorded: true,
        recordedGreeting: "sad to see you go patrick",
        pendingEvent: farewellMark,
      }),
      finalizerMode,
      { kind: "record-event", name: "patrick.fedcba9876543210", reason: "SaidFarewell", message: "sad to see you go patrick" },
    ],
    [
      "deleting without our finalizer, a mark: nothing (the delete event says farewell)",
      member({ deleting: true, finalizers: [OTHER], recordedTeam: "blue", recordedGreeting: "welcome patrick to the team blue", pendingEvent: mark }),
      finalizerMode,
      { kind: "none", why: "being deleted; the delete event says farewell" },
    ],
    [
      "deleting without any finalizer, a mark, event mode: nothing",
      member({ deleting: true, recordedTeam: "blue", pendingEvent: mark }),
      eventMode,
      { kind: "none", why: "being deleted; the delete event says farewell" },
    ],
  ];
  for (const [title, m, policy, expected] of cases) {
    it(title, () => {
      assert.deepEqual(nextStep(m, policy), expected);
    });
  }

  it("deleting with our finalizer: the farewell claim, then its Event, then the release", () => {
    // Each step applied as claim.ts's writes would leave the Member.
    let m = member({ deleting: true, finalizers: [OTHER, FAREWELL_FINALIZER], recordedTeam: "blue", recordedGreeting: "welcome patrick to the team blue" });
    const steps: Step[] = [];
    for (let i = 0; i < 5; i++) {
      const step = nextStep(m, finalizerMode);
      steps.push(step);
      if (step.kind === "none") break;
      if (step.kind === "claim") m = { ...m, farewellRecorded: true, recordedGreeting: step.greeting.text, pendingEvent: farewellMark };
      else if (step.kind === "record-event") m = { ...m, pendingEvent: undefined };
      else m = { ...m, finalizers: step.finalizers };
    }
    assert.deepEqual(steps, [
      { kind: "claim", greeting: { text: "sad to see you go patrick", reason: "farewell", member: { ...who, team: "blue" } } },
      { kind: "record-event", name: "patrick.fedcba9876543210", reason: "SaidFarewell", message: "sad to see you go patrick" },
      { kind: "set-finalizers", finalizers: [OTHER], why: "farewell said: let the deletion finish" },
      { kind: "none", why: "being deleted; the delete event says farewell" },
    ]);
  });

  it("uses the Member's namespace in the greeting", () => {
    const step = nextStep(member({ namespace: "team-ns" }), eventMode);
    assert.deepEqual(step.kind === "claim" && step.greeting.member, { name: "patrick", namespace: "team-ns", team: "blue" });
  });

  it("does not change the Member's finalizer list in place", () => {
    const finalizers = [OTHER];
    const m = member({ finalizers });
    nextStep(m, finalizerMode);
    nextStep({ ...m, deleting: true, finalizers: [FAREWELL_FINALIZER], farewellRecorded: true }, finalizerMode);
    assert.deepEqual(finalizers, [OTHER]);
  });

  it("names the finalizer in the group's domain", () => {
    assert.equal(FAREWELL_FINALIZER, "helloworld.apimeister.com/farewell");
  });
});

describe("next-step: farewell on a delete event", () => {
  const cases: [string, Member | undefined, Policy, boolean][] = [
    ["event mode, full object: always", member({ recordedTeam: "blue" }), eventMode, true],
    [
      "event mode, the final object records a farewell (said through the finalizer before a mode switch): not again",
      member({ farewellRecorded: true }),
      eventMode,
      false,
    ],
    ["event mode, bare reference: always", undefined, eventMode, true],
    ["finalizer mode, the final object records the farewell: said already", member({ farewellRecorded: true, finalizers: [] }), finalizerMode, false],
    ["finalizer mode, the final object records none (never held): say it", member({ recordedTeam: "blue" }), finalizerMode, true],
    ["finalizer mode, bare reference: cannot tell, say nothing", undefined, finalizerMode, false],
  ];
  for (const [title, m, policy, expected] of cases) {
    it(title, () => {
      assert.equal(farewellOnDelete(m, policy), expected);
    });
  }
});
