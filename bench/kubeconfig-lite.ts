// The little of a kubeconfig the fetch baseline needs: the current context's
// server URL, its CA and the user's bearer token. No @kubernetes/client-node:
// the baseline is what the function would cost written by hand, so it must
// not load the client it is compared with. Kubeconfigs are YAML, and JSON is
// YAML: JSON is parsed in full (the e2e control plane and the fake API server
// write JSON); for YAML the first `server:`, `certificate-authority(-data):`,
// `insecure-skip-tls-verify:` and `token:` lines are read, enough for a
// kubeconfig with one cluster and one user, which is what a bench gets.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";

export interface KubeTarget {
  /** https://host:port (or http:// for a local stand-in), no trailing slash. */
  readonly server: string;
  /** PEM of the CA to trust, undefined for the system's. */
  readonly ca: string | undefined;
  readonly token: string;
}

type Json = { readonly [key: string]: unknown };

const isMap = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** The entry named `name` of a kubeconfig list (clusters, users, contexts), or the first. */
function entry(config: Json, list: string, name: unknown, inner: string): Json {
  const items = Array.isArray(config[list]) ? (config[list] as unknown[]).filter(isMap) : [];
  const found = items.find((i) => i["name"] === name) ?? items[0];
  const value = found?.[inner];
  if (!isMap(value)) throw new Error(`kubeconfig: no ${list} entry with a ${inner}`);
  return value;
}

function fromJson(config: Json): { server: unknown; caData: unknown; caFile: unknown; token: unknown } {
  const contexts = Array.isArray(config["contexts"]) ? (config["contexts"] as unknown[]).filter(isMap) : [];
  const current = contexts.find((c) => c["name"] === config["current-context"]) ?? contexts[0];
  const context = isMap(current?.["context"]) ? (current["context"] as Json) : {};
  const cluster = entry(config, "clusters", context["cluster"], "cluster");
  const user = entry(config, "users", context["user"], "user");
  return { server: cluster["server"], caData: cluster["certificate-authority-data"], caFile: cluster["certificate-authority"], token: user["token"] };
}

function fromYaml(text: string): { server: unknown; caData: unknown; caFile: unknown; token: unknown } {
  const first = (key: string): string | undefined => {
    const match = new RegExp(`^\\s*${key}:\\s*["']?([^"'\\s]+)["']?\\s*$`, "m").exec(text);
    return match?.[1];
  };
  return { server: first("server"), caData: first("certificate-authority-data"), caFile: first("certificate-authority"), token: first("token") };
}

export function readKubeconfig(file: string): KubeTarget {
  const text = readFileSync(file, "utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const { server, caData, caFile, token } = isMap(parsed) ? fromJson(parsed) : fromYaml(text);
  if (typeof server !== "string" || server === "") throw new Error(`${file}: no server URL`);
  if (typeof token !== "string" || token === "") throw new Error(`${file}: no bearer token (only token users are supported)`);
  let ca: string | undefined;
  if (typeof caData === "string" && caData !== "") ca = Buffer.from(caData, "base64").toString("utf8");
  else if (typeof caFile === "string" && caFile !== "") ca = readFileSync(isAbsolute(caFile) ? caFile : join(dirname(file), caFile), "utf8");
  return { server: server.replace(/\/+$/, ""), ca, token };
}
