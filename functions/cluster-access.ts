// Whether and how the function can reach a Kubernetes API server, decided
// cheaply at start-up from the environment and the file system, without
// loading the Kubernetes client (that costs more than the rest of start-up).
import { existsSync } from "node:fs";
import type { Env } from "./config.ts";

export const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export type ClusterAccess = { readonly kind: "in-cluster" } | { readonly kind: "kubeconfig"; readonly path: string };

/**
 * In a pod, the ServiceAccount the API server mounted; elsewhere the file that
 * KUBECONFIG names. ~/.kube/config is deliberately not read: a greeter started
 * on a laptop must not write to whatever cluster kubectl points at by chance.
 */
export function detectClusterAccess(env: Env, exists: (path: string) => boolean = existsSync): ClusterAccess | undefined {
  if (env["KUBERNETES_SERVICE_HOST"] && env["KUBERNETES_SERVICE_PORT"] && exists(SERVICE_ACCOUNT_TOKEN)) {
    return { kind: "in-cluster" };
  }
  const first = env["KUBECONFIG"]?.split(":").find((path) => path !== "");
  if (first !== undefined && exists(first)) return { kind: "kubeconfig", path: first };
  return undefined;
}

export function describeClusterAccess(access: ClusterAccess): string {
  return access.kind === "in-cluster" ? "in-cluster ServiceAccount" : `kubeconfig ${access.path}`;
}
