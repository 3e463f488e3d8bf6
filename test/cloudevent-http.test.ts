import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { decodeHeaderValue, decodeHttp, encodeBinary, encodeHeaderValue, type HeaderMap } from "../functions/cloudevent-http.ts";
import { HttpError, type ErrorCode } from "../functions/errors.ts";

const member = { apiVersion: "helloworld.apimeister.com/v1", kind: "Member", metadata: { name: "patrick", namespace: "default" }, spec: { memberOf: "blue" } };

function decode(headers: HeaderMap, body: string | Buffer = "") {
  return decodeHttp({ headers, body: Buffer.isBuffer(body) ? body : Buffer.from(body) });
}

function binaryHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t", ...extra };
}

function fails(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

// The SDK's constructor stamps a time and validates; both are what a real sender does.
const sdkEvent = new CloudEvent({
  id: "abc-1",
  source: "https://10.96.0.1:443",
  type: "dev.knative.apiserver.resource.add",
  subject: "/apis/helloworld.apimeister.com/v1/namespaces/default/members/patrick",
  datacontenttype: "application/json",
  kind: "Member",
  name: "patrick team",
  namespace: "default",
  data: member,
});

describe("CloudEvents HTTP codec: conformance with the cloudevents SDK", () => {
  it("reads what the SDK writes in binary mode", () => {
    const message = HTTP.binary(sdkEvent);
    const { event, mode } = decode(message.headers as HeaderMap, String(message.body));
    assert.equal(mode, "binary");
    assert.equal(event.id, "abc-1");
    assert.equal(event.type, sdkEvent.type);
    assert.equal(event.subject, sdkEvent.subject);
    assert.equal(event.time, sdkEvent.time);
    assert.equal(event["kind"], "Member");
    assert.equal(event["name"], "patrick team");
    assert.deepEqual(event.data, member);
  });

  it("reads what the SDK writes in structured mode", () => {
    const message = HTTP.structured(sdkEvent);
    const { event, mode } = decode(message.headers as HeaderMap, String(message.body));
    assert.equal(mode, "structured");
    assert.equal(event.id, "abc-1");
    assert.equal(event["namespace"], "default");
    assert.deepEqual(event.data, member);
  });

  it("writes binary mode the SDK reads back unchanged, non-ASCII and spaces included", () => {
    const out = encodeBinary({
      specversion: "1.0",
      id: "r-1",
      source: "/member-greeter",
      type: "com.apimeister.helloworld.greeting",
      subject: "/apis/x/members/zoë team",
      time: "2026-11-25T10:00:00.000Z",
      data: { greeting: "welcome zoë" },
    });
    assert.equal(out.headers["ce-subject"], "/apis/x/members/zo%C3%AB%20team");
    const back = HTTP.toEvent({ headers: out.headers, body: out.body }) as CloudEvent<unknown>;
    assert.equal(back.type, "com.apimeister.helloworld.greeting");
    assert.deepEqual(back.data, { greeting: "welcome zoë" });
    // The SDK does not percent-decode (see docs/http-contract.md); ours does, and round-trips.
    assert.equal(decode(out.headers, out.body).event.subject, "/apis/x/members/zoë team");
  });
});

describe("CloudEvents HTTP codec: attributes", () => {
  it("percent-decodes ce-* header values exactly once", () => {
    const { event } = decode(binaryHeaders({ "ce-subject": "a%20b%2520c%22%C3%A9" }), "{}");
    assert.equal(event.subject, 'a b%20c"é');
    assert.equal(decodeHeaderValue("ce-x", "plain"), "plain");
    assert.equal(encodeHeaderValue('100% "x"'), "100%25%20%22x%22");
  });

  it("rejects malformed percent-encoding", () => {
    fails(() => decode(binaryHeaders({ "ce-subject": "bad%zz" }), "{}"), "ERR_INVALID_ENCODING", /header ce-subject is not valid percent-encoding/);
  });

  for (const name of ["id", "source", "type"]) {
    it(`requires ${name} in binary mode, non-empty`, () => {
      const headers = binaryHeaders();
      delete headers[`ce-${name}`];
      fails(() => decode(headers, "{}"), "ERR_INVALID_ATTRIBUTE", new RegExp(`ce-${name} is required`));
      fails(() => decode(binaryHeaders({ [`ce-${name}`]: "" }), "{}"), "ERR_INVALID_ATTRIBUTE", new RegExp(`ce-${name} must not be empty`));
    });

    it(`requires ${name} in structured mode, as a non-empty string`, () => {
      const envelope: Record<string, unknown> = { specversion: "1.0", id: "1", source: "/s", type: "t" };
      delete envelope[name];
      fails(
        () => decode({ "content-type": "application/cloudevents+json" }, JSON.stringify(envelope)),
        "ERR_INVALID_ATTRIBUTE",
        new RegExp(`attribute ${name} is required`),
      );
      envelope[name] = 42;
      fails(
        () => decode({ "content-type": "application/cloudevents+json" }, JSON.stringify(envelope)),
        "ERR_INVALID_ATTRIBUTE",
        new RegExp(`attribute ${name} must be a string, got number`),
      );
    });
  }

  it("accepts only specversion 1.0", () => {
    fails(() => decode(binaryHeaders({ "ce-specversion": "0.3" }), "{}"), "ERR_UNSUPPORTED_SPECVERSION", /specversion "0.3" is not supported, only 1.0/);
    fails(
      () => decode({ "content-type": "application/cloudevents+json" }, JSON.stringify({ id: "1", source: "/s", type: "t" })),
      "ERR_INVALID_ATTRIBUTE",
      /specversion is required/,
    );
  });

  it("says a request without ce-specversion or a CloudEvents content type is not a CloudEvent", () => {
    fails(() => decode({ "content-type": "application/json" }, "{}"), "ERR_NOT_A_CLOUDEVENT", /not a CloudEvent/);
  });

  it("checks optional string attributes' types in structured mode", () => {
    const envelope = { specversion: "1.0", id: "1", source: "/s", type: "t", subject: 5 };
    fails(
      () => decode({ "content-type": "application/cloudevents+json" }, JSON.stringify(envelope)),
      "ERR_INVALID_ATTRIBUTE",
      /subject must be a string, got number/,
    );
  });

  it("rejects attribute names that are not lower-case alphanumerics in structured mode", () => {
    const envelope = { specversion: "1.0", id: "1", source: "/s", type: "t", __proto__x: 1 };
    fails(
      () => decode({ "content-type": "application/cloudevents+json" }, JSON.stringify(envelope)),
      "ERR_INVALID_ATTRIBUTE",
      /attribute name "__proto__x" is not valid/,
    );
    const proto = '{"specversion":"1.0","id":"1","source":"/s","type":"t","__proto__":{"polluted":true}}';
    fails(() => decode({ "content-type": "application/cloudevents+json" }, proto), "ERR_INVALID_ATTRIBUTE", /attribute name "__proto__"/);
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  });
});

describe("CloudEvents HTTP codec: data and content types", () => {
  it("parses JSON data, with or without charset, and +json types", () => {
    assert.deepEqual(decode(binaryHeaders({ "content-type": "application/json; charset=utf-8" }), '{"a":1}').event.data, { a: 1 });
    assert.deepEqual(decode(binaryHeaders({ "content-type": "application/vnd.k8s+json" }), '{"a":1}').event.data, { a: 1 });
  });

  it("reads a missing content-type as JSON, and no body as no data", () => {
    const headers = binaryHeaders();
    delete headers["content-type"];
    assert.deepEqual(decode(headers, "[1]").event.data, [1]);
    assert.equal(decode(binaryHeaders(), "").event.data, undefined);
  });

  it("rejects malformed JSON with the parser's reason", () => {
    fails(() => decode(binaryHeaders(), '{"a":'), "ERR_MALFORMED_JSON", /body is not valid JSON: /);
    fails(() => decode({ "content-type": "application/cloudevents+json" }, "{oops"), "ERR_MALFORMED_JSON", /body is not valid JSON/);
  });

  it("rejects bodies that are not UTF-8, and other charsets", () => {
    fails(() => decode(binaryHeaders(), Buffer.from([0x7b, 0xff, 0x7d])), "ERR_INVALID_ENCODING", /not valid UTF-8/);
    fails(() => decode(binaryHeaders({ "content-type": "application/json; charset=latin1" }), "{}"), "ERR_UNSUPPORTED_MEDIA_TYPE", /charset latin1/);
  });

  it("answers 415 for data it cannot read, and for batches", () => {
    fails(() => decode(binaryHeaders({ "content-type": "text/plain" }), "hi"), "ERR_UNSUPPORTED_MEDIA_TYPE", /content-type text\/plain is not supported/);
    fails(() => decode({ "content-type": "application/cloudevents-batch+json" }, "[]"), "ERR_UNSUPPORTED_MEDIA_TYPE", /batched CloudEvents are not supported/);
    fails(() => decode({ "content-type": "application/cloudevents+xml" }, "<x/>"), "ERR_UNSUPPORTED_MEDIA_TYPE", /not supported/);
    const envelope = { specversion: "1.0", id: "1", source: "/s", type: "t", datacontenttype: "text/plain", data: "hi" };
    fails(
      () => decode({ "content-type": "application/cloudevents+json" }, JSON.stringify(envelope)),
      "ERR_UNSUPPORTED_MEDIA_TYPE",
      /datacontenttype text\/plain/,
    );
  });

  it("reads data_base64 in structured mode, and refuses it beside data", () => {
    const envelope = {
      specversion: "1.0",
      id: "1",
      source: "/s",
      type: "t",
      datacontenttype: "application/json",
      data_base64: Buffer.from('{"a":2}').toString("base64"),
    };
    assert.deepEqual(decode({ "content-type": "application/cloudevents+json" }, JSON.stringify(envelope)).event.data, { a: 2 });
    fails(
      () => decode({ "content-type": "application/cloudevents+json" }, JSON.stringify({ ...envelope, data: {} })),
      "ERR_INVALID_ATTRIBUTE",
      /must not both be present/,
    );
    fails(
      () => decode({ "content-type": "application/cloudevents+json" }, JSON.stringify({ ...envelope, data_base64: "!!" })),
      "ERR_INVALID_ATTRIBUTE",
      /not valid base64/,
    );
  });

  it("rejects a structured envelope that is not an object", () => {
    fails(() => decode({ "content-type": "application/cloudevents+json" }, "[]"), "ERR_NOT_A_CLOUDEVENT", /must be a JSON object, got array/);
  });
});
