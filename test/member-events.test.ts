import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeHttp } from "../functions/cloudevent-http.ts";
import { eventType, memberCloudEvent, toBinaryRequest } from "../source/member-events.ts";
import { memberObject } from "./support/greeter-server.ts";

describe("source: Member CloudEvents as ApiServerSource makes them", () => {
  it("names the six types by mode and change", () => {
    assert.equal(eventType("ADDED", "Resource"), "dev.knative.apiserver.resource.add");
    assert.equal(eventType("MODIFIED", "Resource"), "dev.knative.apiserver.resource.update");
    assert.equal(eventType("DELETED", "Reference"), "dev.knative.apiserver.ref.delete");
  });

  it("Resource mode: the object as data, subject and extensions from it", () => {
    const event = memberCloudEvent("ADDED", memberObject("patrick", "blue"), "Resource", "https://10.96.0.1:443");
    assert.equal(event.subject, "/apis/helloworld.apimeister.com/v1/namespaces/default/members/patrick");
    assert.equal(event["kind"], "Member");
    assert.equal(event["apiversion"], "helloworld.apimeister.com/v1");
    assert.equal(event["name"], "patrick");
    assert.equal(event["namespace"], "default");
    assert.deepEqual(event.data, memberObject("patrick", "blue"));
  });

  it("Reference mode: only {kind, namespace, name, apiVersion}", () => {
    const event = memberCloudEvent("DELETED", memberObject("patrick", "blue"), "Reference", "https://10.96.0.1:443");
    assert.deepEqual(event.data, { kind: "Member", namespace: "default", name: "patrick", apiVersion: "helloworld.apimeister.com/v1" });
  });

  it("goes over HTTP in binary mode, and the function's codec reads it back", () => {
    const { headers, body } = toBinaryRequest(memberCloudEvent("MODIFIED", memberObject("patrick", "red", "blue"), "Resource", "https://k"));
    assert.equal(headers["content-type"], "application/json");
    assert.equal(headers["ce-type"], "dev.knative.apiserver.resource.update");
    const { event, mode } = decodeHttp({ headers, body: Buffer.from(body) });
    assert.equal(mode, "binary");
    assert.deepEqual(event.data, memberObject("patrick", "red", "blue"));
  });
});
