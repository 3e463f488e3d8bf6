import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prefersReply } from "../functions/prefer-reply.ts";

describe("Prefer: reply (RFC 7240), as Knative's Broker and Channel dispatchers send it", () => {
  it("is found alone, among other preferences, with parameters or a value, in any case, in any of several headers", () => {
    for (const header of ["reply", "Reply", " reply ", "respond-async, reply", "reply; foo=bar", "reply=true", "wait=10,REPLY"]) {
      assert.equal(prefersReply(header), true, header);
    }
    assert.equal(prefersReply(["respond-async", "reply"]), true);
  });

  it("is not found where no preference is reply", () => {
    for (const header of [undefined, "", "respond-async", "replyx", "no-reply", "return=minimal; reply", "handling=lenient"]) {
      assert.equal(prefersReply(header), false, String(header));
    }
    assert.equal(prefersReply([]), false);
  });
});
