// How much memory the greeter needs once the Kubernetes client is loaded (the
// first recorded greeting or Reference-mode event loads it), for sizing the
// Knative Service's memory request and limit. `node bench/rss-with-kube.ts`
// after `npm run build`: starts `node .` with KUBECONFIG at the local stand-in
// API server, reads VmRSS idle, then after 50 Reference-mode adds, each read
// from the stand-in and recorded on it (status patch and Event).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { startFakeApiServer } from "../test/support/fake-apiserver.ts";
import { binaryEvent, memberObject } from "../test/support/greeter-server.ts";
import { freePort } from "../test/support/ports.ts";

const api = await startFakeApiServer();
const port = await freePort();
const child = spawn(process.execPath, ["."], {
  env: { PATH: process.env["PATH"] ?? "", PORT: String(port), HOST: "127.0.0.1", KUBECONFIG: api.kubeconfig, LOG_LEVEL: "warn" },
  stdio: ["ignore", "ignore", "inherit"],
});
const rssMiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1]) / 1024;
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 500));
try {
  for (
    let i = 0;
    i < 200 &&
    !(await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    ));
    i++
  )
    await settle();
  await settle();
  const idle = rssMiB();
  for (let i = 0; i < 50; i++) {
    api.members.set(`default/m${i}`, memberObject(`m${i}`, "blue"));
    const { headers, body } = binaryEvent("dev.knative.apiserver.ref.add", {
      kind: "Member",
      namespace: "default",
      name: `m${i}`,
      apiVersion: "helloworld.apimeister.com/v1",
    });
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers, body });
    if (res.status !== 200) throw new Error(`event ${i}: ${res.status} ${await res.text()}`);
  }
  await settle();
  const loaded = rssMiB();
  const patches = api.requests.filter((r) => r.method === "PATCH").length;
  console.log(
    `idle RSS ${idle.toFixed(1)} MiB; after 50 Reference-mode adds, recorded (${patches} status patches, ${api.events.length} Events): ${loaded.toFixed(1)} MiB`,
  );
} finally {
  child.kill("SIGTERM");
  await api.close();
}
