// The production entry point (`node .`) as a child process: start-up, logs on
// stdout, and graceful shutdown on SIGTERM/SIGINT.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { request } from "node:http";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { binaryEvent, memberObject } from "./support/greeter-server.ts";
import { freePort } from "./support/ports.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
// The first line of every start here: no KUBECONFIG and no ServiceAccount in the child's environment.
const NO_CLUSTER = "no Kubernetes cluster configured: greetings are not recorded, Reference-mode add and update are refused";

interface Child {
  readonly proc: ChildProcess;
  readonly port: number;
  lines(): Record<string, unknown>[];
  exited: Promise<number | null>;
}

async function startChild(env: Record<string, string> = {}): Promise<Child> {
  const port = await freePort();
  const proc = spawn(process.execPath, ["."], {
    cwd: root,
    env: { PATH: process.env["PATH"] ?? "", PORT: String(port), HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  proc.stdout?.setEncoding("utf8");
  proc.stdout?.on("data", (chunk: string) => (out += chunk));
  const exited = once(proc, "exit").then(([code]) => code as number | null);
  let gone = false;
  void exited.then(() => (gone = true));
  // Poll until it answers; bounded, and cut short if the process dies.
  for (let i = 0; ; i++) {
    if (gone) throw new Error(`exited with ${await exited} before listening: ${out}`);
    const up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (i > 200) throw new Error(`not listening after 10 s: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const lines = () =>
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { proc, port, lines, exited };
}

describe("node . (the production entry point)", () => {
  it("logs JSON lines only, and exits 0 on SIGINT when idle", async () => {
    const child = await startChild();
    child.proc.kill("SIGINT");
    assert.equal(await child.exited, 0);
    assert.deepEqual(
      child.lines().map((l) => [l["level"], l["msg"]]),
      [
        ["info", NO_CLUSTER],
        ["info", `listening on port ${child.port}`],
        ["info", "shutting down (SIGINT): finishing in-flight requests"],
        ["info", "server closed"],
      ],
    );
  });

  it("respects LOG_LEVEL", async () => {
    const child = await startChild({ LOG_LEVEL: "warn" });
    await fetch(`http://127.0.0.1:${child.port}/nope`);
    child.proc.kill("SIGTERM");
    assert.equal(await child.exited, 0);
    assert.deepEqual(
      child.lines().map((l) => [l["level"], l["msg"]]),
      [["warn", "error: no route for GET /nope: send CloudEvents to POST /"]],
    );
  });

  it("refuses bad configuration with exit code 1 and a JSON line saying why", async () => {
    await assert.rejects(startChild({ LOG_LEVEL: "loud" }), /exited with 1 before listening: .*invalid configuration: LOG_LEVEL must be one of/);
  });

  it("on SIGTERM turns unready, lets the in-flight request finish with its answer, then exits 0", async () => {
    const child = await startChild({ SHUTDOWN_GRACE_MS: "10000" });
    const { headers, body } = binaryEvent("dev.knative.apiserver.resource.add", memberObject("patrick", "blue"));
    const half = Math.floor(body.length / 2);
    let pending: ReturnType<typeof request> | undefined;
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: child.port, method: "POST", path: "/", headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on("error", reject);
      req.write(body.slice(0, half));
      // The rest goes after SIGTERM, below.
      pending = req;
    });
    // Let the request reach the server before the signal.
    await new Promise((r) => setTimeout(r, 200));
    child.proc.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    // While the request is in flight the listener stays open: a probe is told 503, on a connection closed after it.
    const probe = await fetch(`http://127.0.0.1:${child.port}/readyz`);
    assert.equal(probe.status, 503);
    assert.equal(probe.headers.get("connection"), "close");
    await probe.text();
    pending?.end(body.slice(half));
    const reply = await answer;
    assert.equal(reply.status, 200);
    assert.match(reply.text, /welcome patrick to the team blue/);
    assert.equal(await child.exited, 0);
    assert.deepEqual(
      child.lines().map((l) => l["msg"]),
      [
        NO_CLUSTER,
        `listening on port ${child.port}`,
        "shutting down (SIGTERM): finishing in-flight requests",
        "welcome patrick to the team blue",
        "server closed",
      ],
    );
  });

  it("closes what is still open when the grace period runs out, and says so", async () => {
    const child = await startChild({ SHUTDOWN_GRACE_MS: "300" });
    const req = request({ host: "127.0.0.1", port: child.port, method: "POST", path: "/", headers: { "content-length": "100" } });
    req.on("error", () => undefined);
    req.write("{");
    await new Promise((r) => setTimeout(r, 100));
    const start = Date.now();
    child.proc.kill("SIGTERM");
    assert.equal(await child.exited, 1);
    const ms = Date.now() - start;
    assert.ok(ms >= 300 && ms < 5000, `exited ${ms} ms after SIGTERM`);
    assert.deepEqual(
      child.lines().map((l) => [l["level"], l["msg"]]),
      [
        ["info", NO_CLUSTER],
        ["info", `listening on port ${child.port}`],
        ["info", "shutting down (SIGTERM): finishing in-flight requests"],
        ["warn", "shutdown grace period is over: closing the connections still open"],
        ["info", "server closed"],
      ],
    );
  });
});
