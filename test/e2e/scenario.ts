// The end-to-end scenario, one `describe` per event source and mode: Members
// are created, changed and deleted with kubectl; a source (Knative's adapter or
// our stand-in) watches them and sends CloudEvents to the function (`node .`),
// which greets, and records status.team and a core Event on the API server.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it, type TestContext } from "node:test";
import type { ControlPlane, Proc } from "./control-plane.ts";
import { MEMBERS, NAMESPACE } from "./cluster.ts";
import { applyMember, deleteAllMembers, deleteMember, events, field, getMember, waitForEvents, waitForStatusTeam } from "./members.ts";
import type { GreeterProcess, LogLine, Mode } from "./workloads.ts";

export interface ScenarioContext {
  readonly cp: ControlPlane;
  readonly greeter: GreeterProcess;
  /** Starts the event source with K_SINK at the greeter; resolves once it is watching. */
  startSource(mode: Mode): Promise<Proc>;
}

const isGreeting = (line: LogLine): boolean => line.level === "info" && typeof line["reason"] === "string" && typeof line["eventType"] === "string";

export function describeScenario(title: string, mode: Mode, context: () => ScenarioContext): void {
  const prefix = mode === "Resource" ? "dev.knative.apiserver.resource." : "dev.knative.apiserver.ref.";
  const tag = mode === "Resource" ? "res" : "ref";

  describe(title, { timeout: 300_000 }, () => {
    let source: Proc | undefined;
    let patrickUid = "";
    // The steps build on each other: after a failure, skip the rest rather than time out in each.
    let broken = false;
    const step = (name: string, fn: () => Promise<void>): void => {
      it(name, async (t: TestContext) => {
        if (broken) return t.skip("an earlier step failed");
        await fn();
      });
    };
    afterEach((t) => {
      if ((t as unknown as { passed?: boolean }).passed === false) broken = true;
    });

    before(async () => {
      const { cp, startSource } = context();
      // A clean slate: no Members, and no watcher yet, so none of this is sent.
      await deleteAllMembers(cp);
      source = await startSource(mode);
    });

    after(async () => {
      // The source first: what is deleted afterwards is not delivered.
      if (source === undefined) return;
      await source.stop(5_000);
      // It stopped by itself on SIGTERM, within the grace period, and cleanly.
      assert.equal(await source.exited, 0, source.tail());
    });

    step("create patrick with team blue → welcome, status.team blue, a Welcomed Event", async () => {
      const { cp, greeter } = context();
      const mark = greeter.mark();
      await applyMember(cp, "patrick", "blue");
      const line = await greeter.waitForLog("welcome patrick to the team blue", mark);
      assert.equal(line.level, "info");
      assert.equal(line["eventType"], `${prefix}add`);
      assert.equal(line["reason"], "welcome");
      assert.equal(line["team"], "blue");
      const member = await waitForStatusTeam(cp, "patrick", "blue");
      assert.equal(field(member, "status", "greeting"), "welcome patrick to the team blue");
      patrickUid = String(field(member, "metadata", "uid"));
      const [event] = await waitForEvents(cp, `involvedObject.uid=${patrickUid},reason=Welcomed`);
      assert.equal(field(event, "message"), "welcome patrick to the team blue");
      assert.equal(field(event, "type"), "Normal");
    });

    step("memberOf blue → red: patrick moved from the team blue to the team red", async () => {
      const { cp, greeter } = context();
      const mark = greeter.mark();
      await applyMember(cp, "patrick", "red");
      const line = await greeter.waitForLog("patrick moved from the team blue to the team red", mark);
      assert.equal(line["eventType"], `${prefix}update`);
      assert.equal(line["reason"], "team-change");
      await waitForStatusTeam(cp, "patrick", "red");
      await waitForEvents(cp, `involvedObject.uid=${patrickUid},reason=TeamChanged`);
    });

    step("a metadata-only and a status-only change greet nobody (checked up to a later marker greeting)", async () => {
      const { cp, greeter } = context();
      const mark = greeter.mark();
      await cp.kubectlOk(["label", MEMBERS, "patrick", "-n", NAMESPACE, "e2e/metadata-only=yes"]);
      await cp.kubectlOk([
        "patch",
        MEMBERS,
        "patrick",
        "-n",
        NAMESPACE,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"greeting":"a status-only change"}}',
      ]);
      // The source sends changes in order, one at a time: once the marker's
      // add has been greeted, both changes above have been answered.
      const marker = `marker-${tag}`;
      await applyMember(cp, marker, "green");
      const markerGreeting = `welcome ${marker} to the team green`;
      await greeter.waitForLog(markerGreeting, mark);
      const since = greeter.linesSince(mark);
      const between = since.slice(
        0,
        since.findIndex((l) => l.msg === markerGreeting),
      );
      assert.deepEqual(
        between.filter(isGreeting).map((l) => l.msg),
        [],
      );
      // Level-triggered: patrick is in step with its status, whatever changed.
      const ignored = between.filter((l) => l.msg.startsWith("ignored: nothing to greet: in step already") && l["eventType"] === `${prefix}update`);
      // Two, or three when the echo of the function's own earlier status write (the cleared
      // mark of the previous greeting's Event, written once the claims pause) lands in between.
      assert.ok(ignored.length >= 2 && ignored.length <= 3, `both updates were delivered and ignored: ${JSON.stringify(between)}`);
      const member = await getMember(cp, "patrick");
      assert.equal(field(member, "status", "team"), "red");
      assert.equal(field(member, "status", "greeting"), "a status-only change");
    });

    step("remove the team: patrick left the team red", async () => {
      const { cp, greeter } = context();
      const mark = greeter.mark();
      await cp.kubectlOk(["patch", MEMBERS, "patrick", "-n", NAMESPACE, "--type=json", "-p", '[{"op":"remove","path":"/spec/memberOf"}]']);
      const line = await greeter.waitForLog("patrick left the team red", mark);
      assert.equal(line["eventType"], `${prefix}update`);
      await waitForStatusTeam(cp, "patrick", "");
    });

    step("delete patrick: sad to see you go patrick", async () => {
      const { cp, greeter } = context();
      const farewellsBefore = (await events(cp, "involvedObject.name=patrick,reason=SaidFarewell")).length;
      const mark = greeter.mark();
      await deleteMember(cp, "patrick");
      const line = await greeter.waitForLog("sad to see you go patrick", mark);
      assert.equal(line["eventType"], `${prefix}delete`);
      assert.equal(line["reason"], "farewell");
      await waitForEvents(cp, "involvedObject.name=patrick,reason=SaidFarewell", farewellsBefore + 1);
    });

    step("create a Member with no team: welcome nina", async () => {
      const { cp, greeter } = context();
      const mark = greeter.mark();
      await applyMember(cp, "nina");
      const line = await greeter.waitForLog("welcome nina", mark);
      assert.equal(line["eventType"], `${prefix}add`);
      assert.equal(line["team"], "");
      await waitForStatusTeam(cp, "nina", "");
    });

    step("a Member whose memberOf is not a string is rejected by the API server, and nothing is sent", async () => {
      const { cp, greeter } = context();
      const mark = greeter.mark();
      // --validate=false: kubectl does not check the schema itself, the API server does.
      const refused = await cp.kubectl(["apply", "--validate=false", "-f", "-"], {
        input: JSON.stringify({
          apiVersion: "helloworld.apimeister.com/v1",
          kind: "Member",
          metadata: { name: "numeric", namespace: NAMESPACE },
          spec: { memberOf: 42 },
        }),
      });
      assert.notEqual(refused.code, 0, refused.stdout);
      assert.match(refused.stderr, /spec\.memberOf: Invalid value: "integer": spec\.memberOf in body must be of type string/);
      assert.equal(await getMember(cp, "numeric"), undefined);
      // A later change is greeted (nina had no team: joining one is a welcome), the refused one never was.
      await applyMember(cp, "nina", "blue");
      const line = await greeter.waitForLog("welcome nina to the team blue", mark);
      assert.equal(line["eventType"], `${prefix}update`);
      assert.deepEqual(
        greeter.linesSince(mark).filter((l) => l["member"] === "numeric"),
        [],
      );
    });
  });
}
