// The image, built by a real container engine from the Dockerfile every user
// deploys, and run the way the kubelet runs it for config/greeter/service.yaml:
// read-only root file system (and no writable /tmp either), uid 1000, no
// capabilities, no privilege escalation. `npm run test:image` (podman, as root).
//
// The base is the Dockerfile's build argument BASE: node:24-alpine by default;
// here the local stand-in from scripts/build-base-image.sh, named by
// GREETER_BASE_IMAGE, since no image registry is reachable from these machines.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { chmod } from "node:fs/promises";
import path from "node:path";
import { startFakeApiServer } from "../support/fake-apiserver.ts";
import { binaryEvent, memberObject, post } from "../support/greeter-server.ts";
import { freePort } from "../support/ports.ts";
import { checkExample, curlExamples, readme, repoRoot } from "../support/readme-examples.ts";

const exec = promisify(execFile);
const base = process.env["GREETER_BASE_IMAGE"];
const IMAGE = "localhost/member-greeter:test";
// As scripts/podman.sh says, for the same reasons.
const GLOBAL = ["--runtime", "runc"];
const LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"];
// What config/greeter/service.yaml's securityContext makes of the container.
const HARDENED = ["--read-only", "--read-only-tmpfs=false", "--user", "1000:1000", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"];

async function podman(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await exec("podman", [...GLOBAL, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs });
  return stdout;
}

interface Running {
  readonly name: string;
  readonly url: string;
  readonly startedAt: number;
  readonly firstGreetingMs: number;
}

let counter = 0;
async function runContainer(env: Record<string, string> = {}, extra: readonly string[] = []): Promise<Running> {
  const port = await freePort();
  const name = `member-greeter-test-${process.pid}-${counter++}`;
  const envArgs = Object.entries({ PORT: String(port), HOST: "127.0.0.1", ...env }).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  const startedAt = performance.now();
  await podman(["run", "-d", "--name", name, "--network", "host", ...LIMITS, ...HARDENED, ...extra, ...envArgs, IMAGE]);
  const url = `http://127.0.0.1:${port}`;
  const add = binaryEvent("dev.knative.apiserver.resource.add", memberObject("patrick", "blue"));
  for (;;) {
    const status = await fetch(`${url}/`, { method: "POST", headers: add.headers, body: add.body }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) break;
    if (performance.now() - startedAt > 30_000) throw new Error(`no greeting after 30 s: ${await logs(name)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { name, url, startedAt, firstGreetingMs: performance.now() - startedAt };
}

async function logs(name: string): Promise<string> {
  const { stdout, stderr } = await exec("podman", [...GLOBAL, "logs", name]).catch((err: { stdout?: string; stderr?: string }) => ({
    stdout: err.stdout ?? "",
    stderr: err.stderr ?? "",
  }));
  return `${stdout}${stderr}`;
}

async function remove(name: string): Promise<void> {
  await exec("podman", [...GLOBAL, "rm", "-f", "-t", "0", name]).catch(() => undefined);
}

describe("the image, built and run by podman", {
  skip: base === undefined ? "GREETER_BASE_IMAGE is not set: run npm run test:image" : false,
  timeout: 900_000,
}, () => {
  const started: string[] = [];
  let buildMs = 0;

  before(async () => {
    assert.ok(base !== undefined);
    const ca = process.env["NODE_EXTRA_CA_CERTS"];
    // The registry's TLS may be intercepted by a proxy whose CA only the machine trusts:
    // handed to npm for its one RUN as a build secret, never left in a layer.
    const secret = ca !== undefined && existsSync(ca) ? ["--secret", `id=npm-ca,src=${ca}`] : [];
    const t = performance.now();
    await podman(["build", "--network", "host", ...LIMITS, "--build-arg", `BASE=${base}`, ...secret, "-t", IMAGE, repoRoot], 900_000);
    buildMs = performance.now() - t;
  });

  after(async () => {
    for (const name of started) await remove(name);
  });

  it("is the bundle on the base and nothing else: no node_modules, no sources, no npm cache, no CA secret", async (t) => {
    t.diagnostic(`podman build (npm ci, bundle, compile-cache warm-up): ${(buildMs / 1000).toFixed(1)} s`);
    const size = async (image: string): Promise<number> => Number((await podman(["image", "inspect", "--format", "{{.Size}}", image])).trim());
    const [own, of] = [await size(IMAGE), await size(base ?? "")];
    t.diagnostic(`image ${(own / 1e6).toFixed(1)} MB, base ${(of / 1e6).toFixed(1)} MB: ${((own - of) / 1e6).toFixed(1)} MB over its base`);
    assert.ok(own - of < 10e6, `the app adds ${own - of} bytes`);
    // Every file in the final image that its base does not have.
    const list = async (image: string): Promise<Set<string>> =>
      new Set(
        (await podman(["run", "--rm", "--network", "host", ...LIMITS, "--user", "0", "--entrypoint", "find", image, "/", "-xdev", "-type", "f"]))
          .split("\n")
          .filter(Boolean),
      );
    const baseFiles = await list(base ?? "");
    const added = [...(await list(IMAGE))].filter((f) => !baseFiles.has(f)).sort();
    const unexpected = added.filter((f) => !/^\/app\/(package\.json|dist\/function\/[^/]+\.(mjs|txt)|\.compile-cache\/.+)$/.test(f));
    assert.deepEqual(unexpected, []);
    assert.ok(added.includes("/app/package.json"));
    assert.ok(added.some((f) => /^\/app\/dist\/function\/member-greeter\.mjs$/.test(f)));
    assert.ok(
      added.some((f) => f.startsWith("/app/.compile-cache/")),
      "the compile cache is baked in",
    );
    assert.deepEqual(
      added.filter((f) => /node_modules|\.ts$|\/\.npm\/|npm-ca/.test(f)),
      [],
    );
    const history = await podman(["history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE]);
    assert.doesNotMatch(history, /BEGIN CERTIFICATE/);
  });

  it("answers every README curl example as shown, as uid 1000 with a read-only root and no capabilities", async (t) => {
    const running = await runContainer();
    started.push(running.name);
    t.diagnostic(`container start to first 200 greeting: ${running.firstGreetingMs.toFixed(0)} ms`);
    const examples = curlExamples(readme);
    assert.ok(examples.length >= 8);
    for (const example of examples) await checkExample(example, running.url);
    const inspect = JSON.parse(await podman(["inspect", running.name])) as [
      { Config: { User: string }; HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[] | null } },
    ];
    assert.equal(inspect[0].Config.User, "1000:1000");
    assert.equal(inspect[0].HostConfig.ReadonlyRootfs, true);
    const status = await podman(["exec", running.name, "cat", "/proc/1/status"]);
    assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
  });

  it("uses the compile cache baked into the image (Node says each chunk's code cache was accepted)", async () => {
    const running = await runContainer({ NODE_DEBUG_NATIVE: "COMPILE_CACHE" });
    started.push(running.name);
    await podman(["stop", "-t", "10", running.name]);
    const output = await logs(running.name);
    const accepted = [...output.matchAll(/V8 code cache for ESM file:\/\/(\/app\/dist\/function\/[^ ]+\.mjs) was accepted/g)].map((m) => m[1]);
    assert.ok(accepted.includes("/app/dist/function/member-greeter.mjs"), output);
    assert.ok(
      accepted.some((f) => /\/startup-[^/]+\.mjs$/.test(f ?? "")),
      output,
    );
    // Read-only: nothing persisted, nothing failed loudly.
    assert.doesNotMatch(output, /rejected|mismatch/i);
  });

  it("finishes a request in flight on podman stop (SIGTERM) and exits 0; nothing was written inside", async () => {
    const running = await runContainer();
    started.push(running.name);
    const add = binaryEvent("dev.knative.apiserver.resource.add", memberObject("ada"));
    const body = Buffer.from(add.body);
    const port = Number(new URL(running.url).port);
    const reply = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, method: "POST", path: "/", headers: { ...add.headers, "content-length": String(body.length) } }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on("error", reject);
      req.write(body.subarray(0, 10));
      // The rest arrives after SIGTERM has been delivered.
      setTimeout(() => req.end(body.subarray(10)), 1_000);
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stopped = spawn("podman", [...GLOBAL, "stop", "-t", "20", running.name], { stdio: "ignore" });
    const answer = await reply;
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.text, /welcome ada/);
    await new Promise((resolve) => stopped.once("exit", resolve));
    assert.equal((await podman(["inspect", "--format", "{{.State.ExitCode}}", running.name])).trim(), "0");
    const output = await logs(running.name);
    assert.match(output, /shutting down \(SIGTERM\)/);
    // podman itself touches /etc for the hosts and resolv.conf it mounts: a container of the
    // same image that runs nothing at all shows what that is, and the greeter may add nothing.
    const idle = `${running.name}-idle`;
    started.push(idle);
    await podman(["run", "--name", idle, "--network", "host", ...LIMITS, ...HARDENED, "--entrypoint", "true", IMAGE]);
    assert.deepEqual(
      (await podman(["diff", running.name])).trim().split("\n"),
      (await podman(["diff", idle])).trim().split("\n"),
      "podman diff: the greeter wrote nothing",
    );
  });

  it("loads its Kubernetes chunk on first use, from the baked compile cache: a Reference-mode add read and claimed through a stand-in API server", async () => {
    const api = await startFakeApiServer();
    try {
      // The kubeconfig is mounted read-only, as a Secret would be; uid 1000 must be able to read it.
      await chmod(path.dirname(api.kubeconfig), 0o755);
      await chmod(api.kubeconfig, 0o644);
      api.members.set("default/patrick", memberObject("patrick", "blue"));
      api.members.set("default/grace", memberObject("grace", "green"));
      const running = await runContainer({ KUBECONFIG: "/config/kubeconfig", NODE_DEBUG_NATIVE: "COMPILE_CACHE" }, [
        "-v",
        `${api.kubeconfig}:/config/kubeconfig:ro`,
      ]);
      started.push(running.name);
      // runContainer's own greeting claimed patrick already: grace comes by reference only.
      const add = binaryEvent("dev.knative.apiserver.ref.add", {
        kind: "Member",
        namespace: "default",
        name: "grace",
        apiVersion: "helloworld.apimeister.com/v1",
      });
      const reply = await post(`${running.url}/`, add.headers, add.body);
      assert.equal(reply.status, 200, `${reply.text}\n${await logs(running.name)}`);
      assert.equal((reply.json() as { greeting?: unknown }).greeting, "welcome grace to the team green");
      assert.equal((api.members.get("default/grace")?.["status"] as { team?: unknown } | undefined)?.team, "green");
      assert.ok(
        api.requests.some((r) => r.method === "GET" && r.path.endsWith("/members/grace")),
        "read by reference",
      );
      await podman(["stop", "-t", "10", running.name]);
      assert.equal((await podman(["inspect", "--format", "{{.State.ExitCode}}", running.name])).trim(), "0");
      const output = await logs(running.name);
      assert.doesNotMatch(output, /"level":"error"/);
      // The build's warm-up loaded the chunk without a cluster, so its compiled code is in the image too.
      assert.match(output, /V8 code cache for ESM file:\/\/\/app\/dist\/function\/kube-client-[^ ]+\.mjs was accepted/);
    } finally {
      await api.close();
    }
  });

  it("cold start: container start to the first 200 greeting, beside node . on the host (reported, not asserted)", async (t) => {
    const rounds = 5;
    const container: number[] = [];
    const host: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const running = await runContainer();
      container.push(running.firstGreetingMs);
      await remove(running.name);
      host.push(await hostColdStart());
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
    t.diagnostic(
      `cold start to first greeting, median of ${rounds}: container ${median(container).toFixed(0)} ms (${container.map((x) => x.toFixed(0)).join(", ")}), node . on the host ${median(host).toFixed(0)} ms (${host.map((x) => x.toFixed(0)).join(", ")})`,
    );
    assert.equal(container.length, rounds);
  });
});

/** `node .` on the host, timed like runContainer: spawn to the first 200 greeting. */
async function hostColdStart(): Promise<number> {
  const port = await freePort();
  const startedAt = performance.now();
  const child = spawn(process.execPath, ["."], {
    cwd: repoRoot,
    env: { PATH: process.env["PATH"] ?? "", PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "silent" },
    stdio: "ignore",
  });
  try {
    const add = binaryEvent("dev.knative.apiserver.resource.add", memberObject("patrick", "blue"));
    for (;;) {
      const status = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: add.headers, body: add.body }).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return performance.now() - startedAt;
      if (performance.now() - startedAt > 30_000) throw new Error("node . gave no greeting within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    child.kill("SIGTERM");
  }
}
