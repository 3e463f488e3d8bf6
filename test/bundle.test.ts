// What scripts/bundle.ts leaves out, checked on the build that ships
// (dist/function, made by `npm test`'s pretest): no ES module import of
// node:http (it would load Node's undici), no body-parser; the Kubernetes
// client chunk holds no model classes and no undici; the serializer that stands in for the client's
// own gives the same results for every type the calls we make use; and the
// bundled function, run as `node .` against a stand-in API server, claims and
// records greetings over a bounded pool of kept-alive connections.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { greeterEntry, startServer, stopServer, type Running } from "../bench/proc.ts";
import { ObjectSerializer as Untyped } from "../functions/kube-untyped-serializer.ts";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.ts";
import { binaryEvent, memberObject, post } from "./support/greeter-server.ts";

const ROOT = resolve(import.meta.dirname, "..");
const DIST = join(ROOT, "dist", "function");
const clientDir = dirname(createRequire(import.meta.url).resolve("@kubernetes/client-node"));
// The generated methods functions/kube-client.ts calls.
const CALLS = [
  "getNamespacedCustomObject",
  "listNamespacedCustomObject",
  "patchNamespacedCustomObjectStatus",
  "patchNamespacedCustomObject",
  "createNamespacedCustomObject",
];

const kubeChunk = (): string => {
  const [file, ...more] = readdirSync(DIST).filter((f) => /^kube-client-.*\.mjs$/.test(f));
  assert.ok(file, "no kube-client chunk in dist/function: run npm run build");
  assert.equal(more.length, 0);
  return join(DIST, file);
};

describe("the bundle", () => {
  const files = (): string[] => readdirSync(DIST).filter((f) => f.endsWith(".mjs"));

  it("never imports node:http as an ES module, which would make Node load undici", () => {
    for (const file of files()) assert.doesNotMatch(readFileSync(join(DIST, file), "utf8"), /from\s*"(node:)?http"/, file);
  });

  it("leaves out body-parser (iconv-lite, qs): Express's parsers are never used", () => {
    for (const file of files()) {
      const text = readFileSync(join(DIST, file), "utf8");
      assert.doesNotMatch(text, /iconv-lite|windows1252|urlencoded parser/i, file);
    }
  });
});

describe("the bundled Kubernetes client", () => {
  it("is a chunk of under 600 KiB, without model classes, CoreV1Api or undici", () => {
    const file = kubeChunk();
    const text = readFileSync(file, "utf8");
    assert.ok(statSync(file).size < 600 * 1024, `${statSync(file).size} bytes`);
    assert.doesNotMatch(text, /V1PodSpec|V1ObjectMeta|CoreV1ApiRequestFactory/);
    assert.doesNotMatch(text, /llhttp/, "undici's HTTP parser");
    assert.match(text, /CustomObjectsApiRequestFactory/);
    assert.match(text, /undici\.\$\{?|undici\./, "the stand-in that refuses to be used");
  });

  it("serializes like the client's own ObjectSerializer, for every type the calls we make pass it", async () => {
    const { ObjectSerializer: Real } = (await import(join(clientDir, "gen", "models", "ObjectSerializer.js"))) as { ObjectSerializer: typeof Untyped };
    const source = readFileSync(join(clientDir, "gen", "apis", "CustomObjectsApi.js"), "utf8");
    const types = new Set<string>();
    for (const call of CALLS) {
      for (const name of [call, `${call}WithHttpInfo`]) {
        const start = source.indexOf(`    async ${name}(`);
        assert.notEqual(start, -1, `${name} is in CustomObjectsApi.js`);
        const end = source.indexOf("\n    async ", start + 1);
        for (const m of source.slice(start, end === -1 ? undefined : end).matchAll(/ObjectSerializer\.(?:de)?serialize\([^;]*?, "([^"]+)"/g))
          types.add(String(m[1]));
      }
    }
    assert.deepEqual([...types].sort(), ["any", "boolean", "number", "string"]);
    const samples: Record<string, readonly unknown[]> = {
      any: [{ a: [1, { b: null }], c: "x" }, [1, 2], "s", undefined, null],
      boolean: [true, false, undefined],
      number: [0, 500, undefined],
      string: ["", "fieldManager", undefined],
    };
    for (const type of types) {
      for (const value of samples[type] ?? []) {
        assert.deepEqual(Untyped.serialize(value, type, ""), Real.serialize(value, type, ""), `serialize ${type}`);
        assert.deepEqual(Untyped.deserialize(value, type, ""), Real.deserialize(value, type, ""), `deserialize ${type}`);
      }
    }
    for (const mediaType of ["application/json", "application/json; charset=utf-8", "application/merge-patch+json", "text/plain", undefined]) {
      assert.equal(Untyped.normalizeMediaType(mediaType), Real.normalizeMediaType(mediaType));
    }
    for (const list of [[], ["application/json", "application/yaml"], ["application/merge-patch+json", "application/json-patch+json"], ["text/plain"]]) {
      assert.equal(Untyped.getPreferredMediaType(list), Real.getPreferredMediaType(list));
    }
    const body = { metadata: { resourceVersion: "7" }, status: { greeting: "welcome ada" } };
    assert.equal(Untyped.stringify(body, "application/merge-patch+json"), Real.stringify(body, "application/merge-patch+json"));
    assert.deepEqual(Untyped.parse('{"kind":"Member"}', "application/json"), Real.parse('{"kind":"Member"}', "application/json"));
    assert.throws(() => Untyped.serialize({}, "V1DeleteOptions", ""), /carries no model types/);
  });
});

describe("the bundled function loads its Kubernetes client at start-up, not on the first event", () => {
  it("is ready before any event, so that the first one does not wait for it (checked by taking the kubeconfig away)", async () => {
    const api = await startFakeApiServer();
    const dir = await mkdtemp(join(tmpdir(), "greeter-preload-"));
    const kubeconfig = join(dir, "kubeconfig");
    await copyFile(api.kubeconfig, kubeconfig);
    const greeter = await startServer(
      { key: "greeter", label: "member-greeter", args: [greeterEntry(ROOT)], env: { KUBECONFIG: kubeconfig, RECORD_GREETINGS: "auto", LOG_LEVEL: "debug" } },
      { cwd: ROOT, marker: '"msg":"Kubernetes client ready"' },
    );
    try {
      for (let i = 0; i < 750 && greeter.marked() === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(greeter.marked(), 1, `no "Kubernetes client ready" line without any event: ${greeter.tail()}`);
      // Loaded on first use, the client would read the kubeconfig now, and fail.
      await rm(dir, { recursive: true });
      api.members.set("default/early", memberObject("early", "blue"));
      const { headers, body } = binaryEvent("dev.knative.apiserver.resource.add", memberObject("early", "blue"));
      const reply = await post(greeter.url, headers, body);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.get("ce-type"), "com.apimeister.helloworld.greeting");
    } finally {
      await stopServer(greeter);
      await api.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the bundled function against a stand-in API server", () => {
  let api: FakeApiServer;
  let greeter: Running;
  before(async () => {
    api = await startFakeApiServer();
    api.delayAnswers(5);
    greeter = await startServer(
      {
        key: "greeter",
        label: "member-greeter",
        args: [greeterEntry(ROOT)],
        env: { KUBECONFIG: api.kubeconfig, RECORD_GREETINGS: "auto", KUBE_MAX_CONNECTIONS: "3" },
      },
      { cwd: ROOT, marker: '"reason":"welcome"' },
    );
  });
  after(async () => {
    await stopServer(greeter);
    await api.close();
  });

  it("claims, says and records 30 greetings sent at once over at most KUBE_MAX_CONNECTIONS connections, kept open", async () => {
    const names = Array.from({ length: 30 }, (_, i) => `b${i}`);
    for (const name of names) api.members.set(`default/${name}`, memberObject(name, "blue"));
    // The first answer once the process listens.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await fetch(new URL("healthz", greeter.url)).then(
        () => true,
        () => false,
      );
      if (ok || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const replies = await Promise.all(
      names.map((name) => {
        const { headers, body } = binaryEvent("dev.knative.apiserver.resource.add", memberObject(name, "blue"));
        return post(greeter.url, headers, body);
      }),
    );
    assert.deepEqual(
      replies.map((r) => r.status),
      names.map(() => 200),
    );
    // The Events and the cleared marks follow the replies.
    for (
      let i = 0;
      i < 200 && names.some((n) => (api.members.get(`default/${n}`)?.["status"] as { pendingEvent?: unknown } | undefined)?.pendingEvent !== undefined);
      i++
    ) {
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const name of names) {
      const status = api.members.get(`default/${name}`)?.["status"] as Record<string, unknown> | undefined;
      assert.equal(status?.["greeting"], `welcome ${name} to the team blue`);
      assert.equal(status?.["pendingEvent"], undefined, "the mark cleared");
    }
    assert.equal(api.events.length, 30);
    assert.equal(new Set(api.events.map((e) => (e["regarding"] as { name: string }).name)).size, 30);
    assert.ok(api.connections().accepted <= 3, `${api.connections().accepted} connections`);
    assert.equal(api.connections().open, api.connections().accepted, "kept open");
    assert.equal(greeter.marked(), 30);
  });
});
