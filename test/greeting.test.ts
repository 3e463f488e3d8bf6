import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { farewellFor, farewellText, greetingFor, greetingForState } from "../functions/greeting.ts";
import type { Member } from "../functions/member.ts";
import { memberFixture } from "./support/memory-kube.ts";

function member(team: string, recordedTeam?: string): Member {
  return memberFixture({ team, recordedTeam, uid: undefined, resourceVersion: undefined, generation: undefined });
}

describe("greeting rules", () => {
  it("welcomes a new member to their team (the original's text)", () => {
    assert.deepEqual(greetingFor("add", member("blue")), {
      text: "welcome patrick to the team blue",
      reason: "welcome",
      member: { name: "patrick", namespace: "default", team: "blue" },
    });
  });

  it("welcomes a member without a team by name only", () => {
    assert.equal(greetingFor("add", member(""))?.text, "welcome patrick");
  });

  it("does not welcome twice: an add whose object already records a greeting was greeted", () => {
    assert.equal(greetingFor("add", member("blue", "blue")), undefined);
    assert.equal(greetingFor("add", member("blue", "")), undefined);
  });

  it("says goodbye on delete", () => {
    const g = greetingFor("delete", member("red", "red"));
    assert.equal(g?.text, "sad to see you go patrick");
    assert.equal(g?.reason, "farewell");
  });

  it("says goodbye to a bare reference, team unknown", () => {
    assert.deepEqual(farewellFor({ name: "patrick", namespace: "ns1" }), {
      text: "sad to see you go patrick",
      reason: "farewell",
      member: { name: "patrick", namespace: "ns1", team: null },
    });
  });

  describe("update, judged against the recorded team", () => {
    const cases: [string, string | undefined, string | undefined, string | undefined][] = [
      ["team change", "blue", "red", "patrick moved from the team blue to the team red"],
      ["left the team", "blue", "", "patrick left the team blue"],
      ["joined a team", "", "green", "welcome patrick to the team green"],
      ["no change", "blue", "blue", undefined],
      ["no team before or after", "", "", undefined],
      ["never greeted: nothing recorded", undefined, "red", undefined],
    ];
    for (const [title, recorded, team, expected] of cases) {
      it(title, () => {
        assert.equal(greetingFor("update", member(team ?? "", recorded))?.text, expected);
      });
    }

    it("gives team-change and welcome their own reasons", () => {
      assert.equal(greetingFor("update", member("red", "blue"))?.reason, "team-change");
      assert.equal(greetingFor("update", member("", "blue"))?.reason, "team-change");
      assert.equal(greetingFor("update", member("red", ""))?.reason, "welcome");
    });
  });

  describe("level-triggered (where greetings are claimed): the state alone decides", () => {
    const cases: [string, string | undefined, string, string | undefined, string | undefined][] = [
      // [title, recorded team, team, text, reason]
      ["never greeted, in a team: welcome to it", undefined, "blue", "welcome patrick to the team blue", "welcome"],
      ["never greeted, no team: welcome by name", undefined, "", "welcome patrick", "welcome"],
      ["in step", "blue", "blue", undefined, undefined],
      ["in step, no team", "", "", undefined, undefined],
      ["team change", "blue", "red", "patrick moved from the team blue to the team red", "team-change"],
      ["left the team", "blue", "", "patrick left the team blue", "team-change"],
      ["joined a team", "", "green", "welcome patrick to the team green", "welcome"],
    ];
    for (const [title, recorded, team, text, reason] of cases) {
      it(title, () => {
        const g = greetingForState(member(team, recorded));
        assert.deepEqual(g && [g.text, g.reason, g.member], text === undefined ? undefined : [text, reason, { name: "patrick", namespace: "default", team }]);
      });
    }

    it("ignores deletion and finalizers: those are next-step's", () => {
      assert.equal(greetingForState({ ...member("blue"), deleting: true, finalizers: ["x/y"] })?.text, "welcome patrick to the team blue");
    });
  });

  it("says farewell in the contract's words", () => {
    assert.equal(farewellText("nina"), "sad to see you go nina");
  });
});
