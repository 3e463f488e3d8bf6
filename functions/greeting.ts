// The greeting rules: the contract inherited from the original Rust operator
// ("welcome NAME to the team TEAM", "welcome NAME", "sad to see you go NAME"),
// extended to team changes judged against the team recorded on the Member.
import type { Member, MemberRef } from "./member.ts";

export type Reason = "welcome" | "team-change" | "farewell";

export interface Greeting {
  readonly text: string;
  readonly reason: Reason;
  readonly member: {
    readonly name: string;
    readonly namespace: string;
    /** The member's team now ("" for none); null when unknown (a Reference-mode delete). */
    readonly team: string | null;
  };
}

export type Change = "add" | "update" | "delete";

function welcomeText(name: string, team: string): string {
  return team === "" ? `welcome ${name}` : `welcome ${name} to the team ${team}`;
}

export function farewellText(name: string): string {
  return `sad to see you go ${name}`;
}

function teamChangeText(name: string, from: string, to: string): string {
  return to === "" ? `${name} left the team ${from}` : `${name} moved from the team ${from} to the team ${to}`;
}

function greeting(text: string, reason: Reason, ref: MemberRef, team: string | null): Greeting {
  return { text, reason, member: { name: ref.name, namespace: ref.namespace, team } };
}

/**
 * What to say about a Member after a change, or undefined for nothing.
 *
 * - add: welcome, unless the object already records a greeted team: status can
 *   only be written after creation, so that is a redelivered add that was greeted.
 * - update: only a team change against status.team; nothing recorded means the
 *   function never greeted this member, and it says nothing, as the original did.
 * - delete: farewell.
 */
export function greetingFor(change: Change, member: Member): Greeting | undefined {
  switch (change) {
    case "add":
      if (member.recordedTeam !== undefined) return undefined;
      return greeting(welcomeText(member.name, member.team), "welcome", member, member.team);
    case "update": {
      const from = member.recordedTeam;
      const to = member.team;
      if (from === undefined || from === to) return undefined;
      if (from === "") return greeting(welcomeText(member.name, to), "welcome", member, to);
      return greeting(teamChangeText(member.name, from, to), "team-change", member, to);
    }
    case "delete":
      return greeting(farewellText(member.name), "farewell", member, member.team);
  }
}

/**
 * Level-triggered: what the Member's spec says against what its status records,
 * whatever event brought it. Used where greetings are recorded (claimed): a
 * Member never greeted is welcomed, one whose team differs from the recorded
 * team hears of the change, one in step hears nothing.
 */
export function greetingForState(member: Member): Greeting | undefined {
  const from = member.recordedTeam;
  if (from === undefined) return greeting(welcomeText(member.name, member.team), "welcome", member, member.team);
  return greetingFor("update", member);
}

/** A farewell from a bare reference: the object is gone, its team unknown. */
export function farewellFor(ref: MemberRef): Greeting {
  return greeting(farewellText(ref.name), "farewell", ref, null);
}
