// Keeps the README true: every `$ curl` example in it is run against the real
// server, and what the README shows (status line, headers, body) must come back.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startGreeter, type TestGreeter } from "./support/greeter-server.ts";
import { checkExample, curlExamples, readme } from "./support/readme-examples.ts";

let greeter: TestGreeter;
before(async () => {
  greeter = await startGreeter({});
});
after(async () => {
  await greeter.stop();
});

describe("README", () => {
  const examples = curlExamples(readme);

  it("has curl examples for binary and structured mode, Reference mode and bad input", () => {
    assert.ok(examples.length >= 8, `found ${examples.length}`);
    assert.ok(examples.some((e) => e.command.includes("application/cloudevents+json")));
    assert.ok(examples.some((e) => e.command.includes("ref-delete")));
    assert.ok(examples.some((e) => e.expected[0]?.includes(" 400 ")));
  });

  for (const example of examples) {
    it(example.command.slice(0, 110), async () => {
      await checkExample(example, greeter.url);
    });
  }
});
