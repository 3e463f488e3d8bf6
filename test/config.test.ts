import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { detectClusterAccess, SERVICE_ACCOUNT_TOKEN } from "../functions/cluster-access.ts";
import { ConfigError, loadConfig, type Config } from "../functions/config.ts";

describe("configuration from the environment", () => {
  const defaults = {
    port: 8080,
    host: undefined,
    logLevel: "info",
    greetingSource: "/member-greeter",
    maxBodyBytes: 1048576,
    shutdownGraceMs: 20000,
    recordGreetings: "auto",
    kubeTimeoutMs: 2000,
    kubeMaxConnections: 16,
    eventTimeoutMs: 5000,
    farewells: "event",
    watchNamespace: undefined,
    metrics: "on",
    replies: "always",
  };

  it("has defaults that serve on 8080, 2 s per API call, 5 s per event, farewells by event", () => {
    assert.deepEqual(loadConfig({}), defaults);
  });

  it("treats empty variables as unset", () => {
    assert.deepEqual(loadConfig({ PORT: "", HOST: "", KUBE_TIMEOUT_MS: "", KUBE_MAX_CONNECTIONS: "", EVENT_TIMEOUT_MS: "", WATCH_NAMESPACE: "" }), defaults);
  });

  it("reads every variable", () => {
    const config = loadConfig({
      PORT: "9000",
      HOST: "127.0.0.1",
      LOG_LEVEL: "DEBUG",
      GREETING_SOURCE: "/x",
      MAX_BODY_BYTES: "10",
      SHUTDOWN_GRACE_MS: "5",
      RECORD_GREETINGS: "off",
      KUBE_TIMEOUT_MS: "200",
      KUBE_MAX_CONNECTIONS: "3",
      EVENT_TIMEOUT_MS: "900",
      FAREWELLS: "Finalizer",
      WATCH_NAMESPACE: "team-ns",
      METRICS: "Off",
      REPLIES: "When-Asked",
    });
    assert.deepEqual(config, {
      port: 9000,
      host: "127.0.0.1",
      logLevel: "debug",
      greetingSource: "/x",
      maxBodyBytes: 10,
      shutdownGraceMs: 5,
      recordGreetings: "off",
      kubeTimeoutMs: 200,
      kubeMaxConnections: 3,
      eventTimeoutMs: 900,
      farewells: "finalizer",
      watchNamespace: "team-ns",
      metrics: "off",
      replies: "when-asked",
    });
  });

  // The two-choice variables, all read by config.ts's oneOf(): what each accepts, in any case, and what it refuses.
  const twoChoices = [
    {
      name: "REPLIES",
      choices: "always or when-asked",
      read: (c: Config) => c.replies,
      accepted: [
        ["always", "always"],
        ["WHEN-ASKED", "when-asked"],
      ],
      refused: ["", "never", "when asked"],
    },
    {
      name: "METRICS",
      choices: "on or off",
      read: (c: Config) => c.metrics,
      accepted: [
        ["on", "on"],
        ["OFF", "off"],
      ],
      refused: ["", "true", "0"],
    },
    {
      name: "FAREWELLS",
      choices: "event or finalizer",
      read: (c: Config) => c.farewells,
      accepted: [
        ["event", "event"],
        ["EVENT", "event"],
        ["finalizer", "finalizer"],
      ],
      refused: ["", "always", "finalizers"],
    },
  ] as const;
  for (const { name, choices, read, accepted, refused } of twoChoices) {
    it(`reads ${name} as ${choices}, in any case, and nothing else`, () => {
      for (const [value, expected] of accepted) assert.equal(read(loadConfig({ [name]: value })), expected);
      for (const value of refused) {
        assert.throws(
          () => loadConfig({ [name]: value }),
          (e: unknown) => e instanceof ConfigError && e.message === `${name} must be ${choices}, got ${JSON.stringify(value)}`,
        );
      }
    });
  }

  it("wants EVENT_TIMEOUT_MS at least KUBE_TIMEOUT_MS: one event makes at least one API call", () => {
    assert.equal(loadConfig({ KUBE_TIMEOUT_MS: "3000", EVENT_TIMEOUT_MS: "3000" }).eventTimeoutMs, 3000);
    assert.throws(
      () => loadConfig({ KUBE_TIMEOUT_MS: "3000", EVENT_TIMEOUT_MS: "2999" }),
      (e: unknown) =>
        e instanceof ConfigError && e.message === "EVENT_TIMEOUT_MS (2999) must be at least KUBE_TIMEOUT_MS (3000): one event makes at least one API call",
    );
    assert.throws(() => loadConfig({ EVENT_TIMEOUT_MS: "1999" }), /EVENT_TIMEOUT_MS \(1999\) must be at least KUBE_TIMEOUT_MS \(2000\)/, "against the default");
    assert.throws(
      () => loadConfig({ KUBE_TIMEOUT_MS: "5001" }),
      /EVENT_TIMEOUT_MS \(5000\) must be at least KUBE_TIMEOUT_MS \(5001\)/,
      "the default against it",
    );
  });

  it("bounds the timeouts", () => {
    assert.equal(loadConfig({ KUBE_TIMEOUT_MS: "100", EVENT_TIMEOUT_MS: "100" }).kubeTimeoutMs, 100);
    assert.equal(loadConfig({ KUBE_MAX_CONNECTIONS: "1" }).kubeMaxConnections, 1);
    assert.equal(loadConfig({ KUBE_MAX_CONNECTIONS: "1024" }).kubeMaxConnections, 1024);
    for (const value of ["0", "1025", "2.5", "many"]) {
      assert.throws(() => loadConfig({ KUBE_MAX_CONNECTIONS: value }), /^ConfigError: KUBE_MAX_CONNECTIONS must be an integer from 1 to 1024/);
    }
    assert.equal(loadConfig({ KUBE_TIMEOUT_MS: "120000", EVENT_TIMEOUT_MS: "600000" }).eventTimeoutMs, 600000);
    assert.throws(() => loadConfig({ KUBE_TIMEOUT_MS: "99" }), /^ConfigError: KUBE_TIMEOUT_MS must be an integer from 100 to 120000, got "99"$/);
    assert.throws(() => loadConfig({ KUBE_TIMEOUT_MS: "120001", EVENT_TIMEOUT_MS: "600000" }), /KUBE_TIMEOUT_MS must be an integer from 100 to 120000/);
    assert.throws(() => loadConfig({ EVENT_TIMEOUT_MS: "600001" }), /^ConfigError: EVENT_TIMEOUT_MS must be an integer from 100 to 600000, got "600001"$/);
    assert.throws(() => loadConfig({ EVENT_TIMEOUT_MS: "5s" }), /EVENT_TIMEOUT_MS must be an integer/);
  });

  it("takes WATCH_NAMESPACE only as a namespace name", () => {
    const ok = ["a", "default", "team-ns-2", "x".repeat(63)];
    for (const ns of ok) assert.equal(loadConfig({ WATCH_NAMESPACE: ns }).watchNamespace, ns);
    for (const ns of ["Default", "team_ns", "-a", "a-", "a.b", "x".repeat(64), " default", "default\n"]) {
      assert.throws(
        () => loadConfig({ WATCH_NAMESPACE: ns }),
        (e: unknown) => e instanceof ConfigError && e.message === `WATCH_NAMESPACE must be a namespace name, got ${JSON.stringify(ns)}`,
        ns,
      );
    }
  });

  it("refuses bad values with a message naming the variable", () => {
    assert.throws(
      () => loadConfig({ PORT: "http" }),
      (e: unknown) => e instanceof ConfigError && /PORT must be an integer/.test(e.message),
    );
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
    assert.equal(
      detectClusterAccess({ HOME: "/root" }, () => true),
      undefined,
    );
  });
});
