// Knative Eventing, installed from its own release manifests: config/core of
// the knative.dev/eventing module that test/cluster/tools/knative-eventing pins
// (the Go module cache has it: `go mod download -json` gives its folder).
// Every change made to them is in CHANGES below, and nothing else is changed.
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments, stringify } from "yaml";
import { repoRoot } from "../e2e/control-plane.ts";

const execFileP = promisify(execFile);
const toolsDir = path.join(repoRoot, "test", "cluster", "tools", "knative-eventing");

/** The pinned release (e.g. v0.50.0) and its module folder. */
export async function eventingModule(): Promise<{ readonly version: string; readonly dir: string }> {
  const env = { ...process.env, GOFLAGS: "-mod=readonly", GOTOOLCHAIN: "local" };
  const { stdout: version } = await execFileP("go", ["list", "-m", "-f", "{{.Version}}", "knative.dev/eventing"], { cwd: toolsDir, env });
  const { stdout } = await execFileP("go", ["mod", "download", "-json", `knative.dev/eventing@${version.trim()}`], {
    cwd: toolsDir,
    env,
    maxBuffer: 1024 * 1024,
  });
  const info = JSON.parse(stdout) as { Dir?: string };
  if (info.Dir === undefined) throw new Error(`go mod download gave no Dir for knative.dev/eventing@${version.trim()}`);
  return { version: version.trim(), dir: info.Dir };
}

/** Local image names of what scripts/build-cluster-images.sh packages, by ko:// import path. */
export function eventingImages(tag: string): Record<string, string> {
  const image = (name: string): string => `localhost/greeter-cluster/${name}:${tag}`;
  return {
    "ko://knative.dev/eventing/cmd/controller": image("eventing-controller"),
    "ko://knative.dev/eventing/cmd/webhook": image("eventing-webhook"),
    "ko://knative.dev/eventing/cmd/mtping": image("eventing-mtping"),
    "ko://knative.dev/eventing/cmd/apiserver_receive_adapter": image("eventing-apiserver-receive-adapter"),
  };
}

/** The changes to config/core, all of them. */
export const CHANGES = {
  /** Deployments of components this cluster does not build or cannot run. */
  leftOut: [
    // JobSink and RequestReply: not used by the greeter; their images are not built.
    "deployments/job-sink.yaml",
    "deployments/request-reply.yaml",
    // The webhook's HorizontalPodAutoscaler: there is no metrics API here.
    "deployments/webhook-hpa.yaml",
  ],
  /**
   * `ko://` references (image fields and the controller's APISERVER_RA_IMAGE) become
   * the local images of eventingImages(); any other ko:// reference (the OIDC auth
   * proxy, off by default) becomes a name that does not exist, so that using it fails visibly.
   */
  unbuiltImage: (koPath: string): string => `localhost/greeter-cluster/not-built/${koPath.split("/").pop() ?? "unknown"}:none`,
  /**
   * The controller reads the images of IntegrationSource/Sink and EventTransform from
   * ConfigMaps that ship outside config/core: those references become optional.
   */
  optionalConfigMaps: ["eventing-integrations-images", "eventing-transformations-images"],
} as const;

type Json = Record<string, unknown>;
const isMap = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function transform(value: unknown, images: Readonly<Record<string, string>>): unknown {
  if (typeof value === "string" && value.startsWith("ko://")) return images[value] ?? CHANGES.unbuiltImage(value.slice("ko://".length));
  if (Array.isArray(value)) return value.map((v) => transform(v, images));
  if (isMap(value)) {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) out[k] = transform(v, images);
    const ref = out["configMapKeyRef"];
    if (isMap(ref) && (CHANGES.optionalConfigMaps as readonly string[]).includes(String(ref["name"]))) out["configMapKeyRef"] = { ...ref, optional: true };
    return out;
  }
  return value;
}

async function yamlFiles(dir: string, base = dir): Promise<string[]> {
  const files: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await yamlFiles(full, base)));
    else if (entry.name.endsWith(".yaml")) files.push(path.relative(base, full));
  }
  return files;
}

/** config/core with CHANGES applied, as one YAML stream (CRDs first). */
export async function eventingCore(tag: string): Promise<{ readonly version: string; readonly yaml: string; readonly objects: number }> {
  const { version, dir } = await eventingModule();
  const core = path.join(dir, "config", "core");
  const images = eventingImages(tag);
  const objects: Json[] = [];
  for (const file of await yamlFiles(core)) {
    if ((CHANGES.leftOut as readonly string[]).includes(file)) continue;
    for (const doc of parseAllDocuments(await readFile(path.join(core, file), "utf8"))) {
      const object = doc.toJS() as unknown;
      if (isMap(object)) objects.push(transform(object, images) as Json);
    }
  }
  const crdFirst = [...objects.filter((o) => o["kind"] === "CustomResourceDefinition"), ...objects.filter((o) => o["kind"] !== "CustomResourceDefinition")];
  return { version, yaml: crdFirst.map((o) => stringify(o)).join("---\n"), objects: crdFirst.length };
}
