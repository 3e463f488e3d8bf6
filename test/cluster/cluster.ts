// A single-node Kubernetes with Knative Eventing, for npm run test:cluster:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd
// (runc, CNI bridge), kubelet, kube-proxy (iptables), CoreDNS and Knative
// Eventing's config/core, all inside the node's namespaces (node.ts). Binaries:
// scripts/build-tools.sh (etcd, kube-apiserver) and scripts/build-cluster-tools.sh;
// images: scripts/build-cluster-images.sh, imported into containerd.
//
// Addresses (inside the node's network namespace only): node 10.222.0.1 (API
// server :6443, kubelet :10250), pods 10.222.1.0/24, Services 10.222.2.0/24
// (kubernetes 10.222.2.1, DNS 10.222.2.10); etcd and the components' own
// ports on the namespace's 127.0.0.1.
import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { childEnv, repoRoot, waitFor, type Proc, type RunResult } from "../e2e/control-plane.ts";
import { eventingCore } from "./knative.ts";
import { startNode, type Node } from "./node.ts";

const execFileP = promisify(execFile);

export const NODE_IP = "10.222.0.1";
export const POD_CIDR = "10.222.1.0/24";
export const SERVICE_CIDR = "10.222.2.0/24";
export const DNS_IP = "10.222.2.10";
export const NODE_NAME = "greeter-node";
export const GREETER_IMAGE = "localhost/member-greeter:cluster";

export interface Tools {
  /** etcd, kube-apiserver (scripts/build-tools.sh) */
  readonly e2eBin: string;
  /** <module>/<binary> (scripts/build-cluster-tools.sh) */
  readonly clusterBin: string;
  readonly imagesTar: string;
  readonly greeterTar: string;
  readonly greeterImage: string;
  readonly tag: string;
}

async function lastLines(script: string, args: readonly string[] = []): Promise<string[]> {
  const { stdout } = await execFileP("bash", [path.join(repoRoot, "scripts", script), ...args], {
    cwd: repoRoot,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 3_600_000,
  });
  return stdout.trim().split("\n");
}

/** Builds (or finds cached) every binary and image the cluster needs. */
export async function buildTools(): Promise<Tools> {
  const e2eBin = (await lastLines("build-tools.sh")).pop() ?? "";
  const clusterBin = (await lastLines("build-cluster-tools.sh")).pop() ?? "";
  const lines = await lastLines("build-cluster-images.sh", [clusterBin]);
  const field = (key: string): string[] =>
    lines
      .find((l) => l.startsWith(`${key} `))
      ?.split(" ")
      .slice(1) ?? [];
  const [imagesTar = ""] = field("images");
  const [greeterTar = "", greeterImage = ""] = field("greeter");
  const [tag = ""] = field("tag");
  return { e2eBin, clusterBin, imagesTar, greeterTar, greeterImage, tag };
}

export interface Cluster {
  readonly node: Node;
  readonly tools: Tools;
  readonly eventingVersion: string;
  /** Seconds per step of the bring-up. */
  readonly timings: Record<string, number>;
  kubectl(args: readonly string[], options?: { readonly input?: string; readonly timeoutMs?: number }): Promise<RunResult>;
  kubectlOk(args: readonly string[], options?: { readonly input?: string; readonly timeoutMs?: number }): Promise<string>;
  kubectlJson<T = unknown>(args: readonly string[]): Promise<T>;
  /** The last lines of every component's output. */
  diagnostics(lines?: number): string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  await execFileP("openssl", [...args], { cwd, timeout: 60_000 });
}

/** A CA, the API server's serving certificate and the API server's client certificate for the kubelet. */
async function certificates(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=member-greeter-cluster-ca"], dir);
  const leaf = async (name: string, subject: string, ext: string): Promise<void> => {
    await writeFile(path.join(dir, `${name}.ext`), ext);
    await openssl(["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], dir);
    await openssl(
      [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.crt`,
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
      ],
      dir,
    );
  };
  const sans = [
    `IP:${NODE_IP}`,
    "IP:10.222.2.1",
    "IP:127.0.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "DNS:localhost",
  ];
  await leaf("apiserver", "/CN=kube-apiserver", `subjectAltName=${sans.join(",")}\nextendedKeyUsage=serverAuth\n`);
  await leaf("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", "extendedKeyUsage=clientAuth\n");
}

const CONTAINERD_CONFIG = (pauseImage: string): string => `version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins.'io.containerd.internal.v1.opt']
  path = "/var/lib/containerd-opt"

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "${pauseImage}"

[plugins.'io.containerd.cri.v1.runtime']
  # CAP_SYS_RESOURCE is not in this VM's bounding set: runc must not lower oom_score_adj.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "/var/lib/cni-conf"
`;

const CNI_CONFIG = {
  cniVersion: "1.0.0",
  name: "greeter-cluster",
  plugins: [
    {
      type: "bridge",
      bridge: "cni0",
      isGateway: true,
      // No masquerading: pods have no way out (node-init.sh drops the rest).
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: "host-local", ranges: [[{ subnet: POD_CIDR }]], routes: [{ dst: "10.222.0.0/16" }], dataDir: "/var/lib/cni/networks" },
    },
  ],
};

function kubeconfig(server: string, caFile: string, token: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "cluster", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name: "user", user: { token } }],
    contexts: [{ name: "ctx", context: { cluster: "cluster", user: "user", namespace: "default" } }],
    "current-context": "ctx",
  });
}

/** CoreDNS: cluster DNS only (the kubernetes plugin; no forwarding: pods resolve nothing outside). */
function coreDnsManifests(image: string): string {
  const labels = { "k8s-app": "kube-dns" };
  const objects = [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "coredns", namespace: "kube-system" } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "system:coredns" },
      rules: [
        { apiGroups: [""], resources: ["endpoints", "services", "pods", "namespaces"], verbs: ["list", "watch"] },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "system:coredns" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:coredns" },
      subjects: [{ kind: "ServiceAccount", name: "coredns", namespace: "kube-system" }],
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "coredns", namespace: "kube-system" },
      data: {
        Corefile: [
          ".:1053 {",
          "    errors",
          "    ready :8181",
          "    kubernetes cluster.local in-addr.arpa ip6.arpa {",
          "        pods insecure",
          "        fallthrough in-addr.arpa ip6.arpa",
          "    }",
          "    cache 30",
          "}",
          "",
        ].join("\n"),
      },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "coredns", namespace: "kube-system", labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: "coredns",
            dnsPolicy: "Default",
            containers: [
              {
                name: "coredns",
                image,
                args: ["-conf", "/etc/coredns/Corefile"],
                ports: [
                  { name: "dns", containerPort: 1053, protocol: "UDP" },
                  { name: "dns-tcp", containerPort: 1053, protocol: "TCP" },
                ],
                readinessProbe: { httpGet: { path: "/ready", port: 8181 }, periodSeconds: 2 },
                volumeMounts: [{ name: "config", mountPath: "/etc/coredns", readOnly: true }],
                securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
                resources: { requests: { cpu: "20m", memory: "32Mi" } },
              },
            ],
            volumes: [{ name: "config", configMap: { name: "coredns" } }],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kube-dns", namespace: "kube-system", labels },
      spec: {
        clusterIP: DNS_IP,
        selector: labels,
        ports: [
          { name: "dns", port: 53, targetPort: 1053, protocol: "UDP" },
          { name: "dns-tcp", port: 53, targetPort: 1053, protocol: "TCP" },
        ],
      },
    },
  ];
  return objects.map((o) => stringify(o)).join("---\n");
}

export async function startCluster(tools: Tools, logDir: string): Promise<Cluster> {
  const timings: Record<string, number> = {};
  let t = performance.now();
  const step = (name: string): void => {
    const now = performance.now();
    timings[name] = Math.round((now - t) / 100) / 10;
    t = now;
  };
  const bin = (module: string, name: string): string => path.join(tools.clusterBin, module, name);
  const image = (name: string): string => `localhost/greeter-cluster/${name}:${tools.tag}`;

  const node = await startNode({ pauseBin: bin("pause", "pause"), logDir });
  const s = node.state;
  const procs: Proc[] = [];
  const spawn = (name: string, command: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Proc => {
    const proc = node.spawn(name, command, args, env);
    procs.push(proc);
    return proc;
  };
  step("namespaces");

  try {
    const pki = path.join(s, "pki");
    await certificates(pki);
    const ca = path.join(pki, "ca.crt");
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    await writeFile(path.join(pki, "sa.key"), privateKey, { mode: 0o600 });
    await writeFile(path.join(pki, "sa.pub"), publicKey);
    // Static tokens; every component is in system:masters (a test cluster: RBAC
    // matters for the workloads, which get ServiceAccounts like anywhere else).
    const users = ["admin", `system:node:${NODE_NAME}`, "system:kube-controller-manager", "system:kube-scheduler", "system:kube-proxy"];
    const tokens = Object.fromEntries(users.map((u) => [u, randomBytes(24).toString("hex")]));
    await writeFile(
      path.join(pki, "tokens.csv"),
      `${users.map((u) => `${tokens[u]},${u},${u},"system:masters${u.startsWith("system:node:") ? ",system:nodes" : ""}"`).join("\n")}\n`,
      { mode: 0o600 },
    );
    const server = `https://${NODE_IP}:6443`;
    const kc = async (name: string, user: string): Promise<string> => {
      const file = path.join(s, `${name}.kubeconfig`);
      await writeFile(file, kubeconfig(server, ca, tokens[user] ?? ""), { mode: 0o600 });
      return file;
    };
    const admin = await kc("admin", "admin");
    step("certificates");

    // etcd and kube-apiserver (the e2e's binaries, the same pins)
    const etcd = spawn("etcd", path.join(tools.e2eBin, "etcd"), [
      `--data-dir=${path.join(s, "etcd")}`,
      "--listen-client-urls=http://127.0.0.1:2379",
      "--advertise-client-urls=http://127.0.0.1:2379",
      "--listen-peer-urls=http://127.0.0.1:2380",
      "--initial-advertise-peer-urls=http://127.0.0.1:2380",
      "--initial-cluster=default=http://127.0.0.1:2380",
      "--listen-metrics-urls=http://127.0.0.1:2381",
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    const apiserver = spawn("kube-apiserver", path.join(tools.e2eBin, "kube-apiserver"), [
      "--etcd-servers=http://127.0.0.1:2379",
      `--bind-address=${NODE_IP}`,
      `--advertise-address=${NODE_IP}`,
      "--secure-port=6443",
      `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
      `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
      `--client-ca-file=${ca}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${path.join(pki, "sa.pub")}`,
      `--service-account-signing-key-file=${path.join(pki, "sa.key")}`,
      `--token-auth-file=${path.join(pki, "tokens.csv")}`,
      "--authorization-mode=Node,RBAC",
      // Webhooks (Knative's) at their pods' IPs; kubectl logs through the kubelet's InternalIP.
      "--enable-aggregator-routing=true",
      "--kubelet-preferred-address-types=InternalIP",
      `--kubelet-client-certificate=${path.join(pki, "apiserver-kubelet-client.crt")}`,
      `--kubelet-client-key=${path.join(pki, "apiserver-kubelet-client.key")}`,
      "--shutdown-watch-termination-grace-period=2s",
      "--profiling=false",
    ]);
    const kubectl = (args: readonly string[], options: { readonly input?: string; readonly timeoutMs?: number } = {}): Promise<RunResult> =>
      node.runInNet("kubectl", [`--kubeconfig=${admin}`, `--cache-dir=${path.join(s, "kubectl-cache")}`, ...args], {
        ...options,
        env: childEnv({ KUBECONFIG: admin }),
        timeoutMs: options.timeoutMs ?? 120_000,
      });
    const kubectlOk = async (args: readonly string[], options: { readonly input?: string; readonly timeoutMs?: number } = {}): Promise<string> => {
      const result = await kubectl(args, options);
      if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`);
      return result.stdout;
    };
    const alive = (...ps: Proc[]): void => {
      for (const p of ps) if (!p.running()) throw new Error(`${p.name} exited: ${p.tail(40)}`);
    };
    await waitFor(
      "kube-apiserver /readyz",
      async () => {
        alive(etcd, apiserver);
        return (await kubectl(["get", "--raw=/readyz"], { timeoutMs: 5_000 })).code === 0;
      },
      { timeoutMs: 90_000, intervalMs: 500, detail: () => apiserver.tail() },
    );
    step("etcd + kube-apiserver");

    const kcm = spawn("kube-controller-manager", bin("kubernetes", "kube-controller-manager"), [
      `--kubeconfig=${await kc("kcm", "system:kube-controller-manager")}`,
      `--service-account-private-key-file=${path.join(pki, "sa.key")}`,
      `--root-ca-file=${ca}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      "--allocate-node-cidrs=false",
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      "--use-service-account-credentials=false",
      // Its default, /usr/libexec/kubernetes/..., would be created on the host's file system.
      "--flex-volume-plugin-dir=/var/lib/kubelet/volume-plugins",
    ]);
    const scheduler = spawn("kube-scheduler", bin("kubernetes", "kube-scheduler"), [
      `--kubeconfig=${await kc("scheduler", "system:kube-scheduler")}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
    ]);

    // containerd, then the images into its k8s.io namespace
    await mkdir(path.join(s, "containerd"), { recursive: true });
    await writeFile(path.join(s, "containerd", "config.toml"), CONTAINERD_CONFIG(image("pause")));
    await mkdir(path.join(s, "var-lib", "cni-conf"), { recursive: true });
    await writeFile(path.join(s, "var-lib", "cni-conf", "10-greeter-cluster.conflist"), `${JSON.stringify(CNI_CONFIG, null, 2)}\n`);
    const containerd = spawn("containerd", bin("containerd", "containerd"), ["--config", path.join(s, "containerd", "config.toml"), "--log-level", "warn"], {
      PATH: `${path.join(tools.clusterBin, "containerd")}:/usr/sbin:/usr/bin:/sbin:/bin`,
    });
    const ctr = (args: readonly string[], timeoutMs = 300_000): Promise<RunResult> =>
      node.runInNode(bin("containerd", "ctr"), ["--address", "/run/containerd/containerd.sock", "--namespace", "k8s.io", ...args], { timeoutMs });
    await waitFor(
      "containerd",
      async () => {
        alive(containerd);
        return (await ctr(["version"], 5_000)).code === 0;
      },
      { timeoutMs: 30_000, intervalMs: 300, detail: () => containerd.tail() },
    );
    for (const tar of [tools.imagesTar, tools.greeterTar]) {
      const imported = await ctr(["images", "import", "--no-unpack", tar]);
      if (imported.code !== 0) throw new Error(`ctr images import ${tar}: ${imported.stderr}`);
    }
    // The test overlay names the function's image by a fixed tag: this run's build.
    const tagged = await ctr(["images", "tag", "--force", tools.greeterImage, GREETER_IMAGE]);
    if (tagged.code !== 0) throw new Error(`ctr images tag: ${tagged.stderr}`);
    step("containerd + image import");

    // kubelet
    const kubeletConfig = {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      // This machine has cgroup v1 (with an empty cgroup2 mount).
      failCgroupV1: false,
      cgroupDriver: "cgroupfs",
      cgroupRoot: "/member-greeter-cluster",
      containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock",
      address: NODE_IP,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      healthzPort: 10248,
      authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: ca } },
      authorization: { mode: "AlwaysAllow" },
      clusterDNS: [DNS_IP],
      clusterDomain: "cluster.local",
      // Pods never see the machine's resolver.
      resolvConf: "",
      failSwapOn: false,
      // Imported images cannot be pulled again: never collect them.
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
      volumePluginDir: "/var/lib/kubelet/volume-plugins",
      serializeImagePulls: false,
      maxPods: 30,
      enableServer: true,
      registerNode: true,
    };
    await writeFile(path.join(s, "kubelet.yaml"), stringify(kubeletConfig));
    const kubelet = spawn("kubelet", bin("kubernetes", "kubelet"), [
      `--config=${path.join(s, "kubelet.yaml")}`,
      `--kubeconfig=${await kc("kubelet", `system:node:${NODE_NAME}`)}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${NODE_IP}`,
      "--v=1",
    ]);
    const proxyConfig = {
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      clientConnection: { kubeconfig: await kc("kube-proxy", "system:kube-proxy") },
      mode: "iptables",
      clusterCIDR: POD_CIDR,
      hostnameOverride: NODE_NAME,
      bindAddress: NODE_IP,
      healthzBindAddress: "127.0.0.1:10256",
      metricsBindAddress: "127.0.0.1:10249",
      // 0: leave the kernel's conntrack settings alone (they are not per namespace).
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
    };
    await writeFile(path.join(s, "kube-proxy.yaml"), stringify(proxyConfig));
    const proxy = spawn("kube-proxy", bin("kubernetes", "kube-proxy"), [`--config=${path.join(s, "kube-proxy.yaml")}`]);
    await waitFor(
      `node ${NODE_NAME} Ready`,
      async () => {
        alive(kcm, scheduler, containerd, kubelet, proxy);
        const out = await kubectl(["get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"], { timeoutMs: 5_000 });
        return out.stdout.trim() === "True";
      },
      { timeoutMs: 120_000, intervalMs: 1_000, detail: () => kubelet.tail(40) },
    );
    step("kubelet + kube-proxy: node Ready");

    // The default ServiceAccount must exist before pods can be created.
    await waitFor(
      "ServiceAccount default/default",
      async () => (await kubectl(["get", "serviceaccount", "default", "-n", "default"], { timeoutMs: 5_000 })).code === 0,
      {
        timeoutMs: 60_000,
        intervalMs: 500,
      },
    );
    await kubectlOk(["apply", "-f", "-"], { input: coreDnsManifests(image("coredns")) });
    const eventing = await eventingCore(tools.tag);
    await kubectlOk(["apply", "--server-side", "-f", "-"], { input: eventing.yaml, timeoutMs: 180_000 });
    await kubectlOk(["wait", "--for=condition=Available", "--timeout=240s", "-n", "kube-system", "deployment/coredns"], { timeoutMs: 250_000 });
    await kubectlOk(
      ["wait", "--for=condition=Available", "--timeout=300s", "-n", "knative-eventing", "deployment/eventing-controller", "deployment/eventing-webhook"],
      {
        timeoutMs: 310_000,
      },
    );
    step(`CoreDNS + Knative Eventing ${eventing.version} (${eventing.objects} objects)`);

    return {
      node,
      tools,
      eventingVersion: eventing.version,
      timings,
      kubectl,
      kubectlOk,
      async kubectlJson<T>(args: readonly string[]) {
        return JSON.parse(await kubectlOk([...args, "-o", "json"])) as T;
      },
      diagnostics(lines = 25) {
        return procs.map((p) => `--- ${p.name} (${p.running() ? "running" : "exited"}), ${p.logFile}:\n${p.tail(lines)}`).join("\n");
      },
    };
  } catch (err) {
    const detail = procs.map((p) => `--- ${p.name} (${p.running() ? "running" : "exited"}):\n${p.tail(30)}`).join("\n");
    const left = await node.teardown();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${detail}${left.length ? `\nteardown left: ${left.join("; ")}` : ""}`, {
      cause: err,
    });
  }
}
