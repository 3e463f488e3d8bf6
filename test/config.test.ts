import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { detectClusterAccess, SERVICE_ACCOUNT_TOKEN } from "../functions/cluster-access.ts";
import { ConfigError, loadConfig } from "../functions/config.ts";

describe("configuration from the environment", () => {
  it("has defaults that serve on 8080", () => {
    assert.deepEqual(loadConfig({}), {
      port: 8080,
      host: undefined,
      logLevel: "info",
      greetingSource: "/member-greeter",
      maxBodyBytes: 1048576,
      shutdownGraceMs: 20000,
      recordGreetings: "auto",
      kubeTimeoutMs: 5000,
    });
  });

  it("reads every variable", () => {
    const config = loadConfig({
      PORT: "9000", HOST: "127.0.0.1", LOG_LEVEL: "DEBUG", GREETING_SOURCE: "/x", MAX_BODY_BYTES: "10",
      SHUTDOWN_GRACE_MS: "5", RECORD_GREETINGS: "off", KUBE_TIMEOUT_MS: "200",
    });
    assert.deepEqual(config, {
      port: 9000, host: "127.0.0.1", logLevel: "debug", greetingSource: "/x", maxBodyBytes: 10,
      shutdownGraceMs: 5, recordGreetings: "off", kubeTimeoutMs: 200,
    });
  });

  it("refuses bad values with a message naming the variable", () => {
    assert.throws(() => loadConfig({ PORT: "http" }), (e: unknown) => e instanceof ConfigError && /PORT must be an integer/.test(e.message));
    assert.throws(() => loadConfig({ PORT: "70000" }), ConfigError);
    assert.throws(() => loadConfig({ LOG_LEVEL: "loud" }), /LOG_LEVEL must be one of/);
    assert.throws(() => loadConfig({ RECORD_GREETINGS: "yes" }), /RECORD_GREETINGS must be auto or off/);
    assert.throws(() => loadConfig({ MAX_BODY_BYTES: "0" }), /MAX_BODY_BYTES/);
    assert.throws(() => loadConfig({ GREETING_SOURCE: "" }), /GREETING_SOURCE/);
  });
});

describe("cluster access detection", () => {
  const exists = (paths: string[]) => (p: string) => paths.includes(p);

  it("uses the pod's ServiceAccount in a cluster", () => {
    const env = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };
    assert.deepEqual(detectClusterAccess(env, exists([SERVICE_ACCOUNT_TOKEN])), { kind: "in-cluster" });
    assert.equal(detectClusterAccess(env, exists([])), undefined);
  });

  it("uses KUBECONFIG outside, the first listed file", () => {
    assert.deepEqual(detectClusterAccess({ KUBECONFIG: "/a:/b" }, exists(["/a"])), { kind: "kubeconfig", path: "/a" });
    assert.equal(detectClusterAccess({ KUBECONFIG: "/missing" }, exists([])), undefined);
  });

  it("never falls back to ~/.kube/config", () => {
    assert.equal(detectClusterAccess({ HOME: "/root" }, () => true), undefined);
  });
});
