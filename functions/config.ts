// Configuration comes from the environment only (twelve-factor, and how Knative
// passes it). Parsing is pure: it takes the environment and returns a value or
// throws, so a bad setting stops the function at start-up with a clear message.
import { isLevel, type Level } from "./logger.ts";

export interface Config {
  readonly port: number;
  /** Interface to listen on; undefined means all. */
  readonly host: string | undefined;
  readonly logLevel: Level;
  /** `source` attribute of reply events. */
  readonly greetingSource: string;
  readonly maxBodyBytes: number;
  /** How long in-flight requests get to finish after SIGTERM. */
  readonly shutdownGraceMs: number;
  /** "auto": record greetings on the cluster when one is configured; "off": never. */
  readonly recordGreetings: "auto" | "off";
  /** Deadline for one Kubernetes API call. */
  readonly kubeTimeoutMs: number;
  /** Connections to the API server at most, shared by every call and kept alive. */
  readonly kubeMaxConnections: number;
  /** Budget for handling one event, every API call included. */
  readonly eventTimeoutMs: number;
  /** "event": farewell on each delete event; "finalizer": held back by a finalizer until it is said and recorded. */
  readonly farewells: "event" | "finalizer";
  /** The namespace whose Members a resync lists; undefined: the function's own (ServiceAccount or kubeconfig context). */
  readonly watchNamespace: string | undefined;
  /** "on": count, and serve GET /metrics; "off": count nothing, and /metrics is not a route. */
  readonly metrics: "on" | "off";
  /**
   * "always": every greeting is answered with its reply event; "when-asked":
   * only where the sender says `Prefer: reply` (Knative's Broker and Channel
   * dispatchers), otherwise 202 with an empty body.
   */
  readonly replies: "always" | "when-asked";
}

export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** One of `choices`, in any case; unset is `fallback` (an empty value is refused, not unset). */
function oneOf<const T extends string>(env: Env, name: string, choices: readonly [T, T], fallback: T): T {
  const raw = env[name];
  const value = (raw ?? fallback).toLowerCase();
  const chosen = choices.find((choice) => choice === value);
  if (chosen === undefined) throw new ConfigError(`${name} must be ${choices.join(" or ")}, got ${JSON.stringify(raw)}`);
  return chosen;
}

export function loadConfig(env: Env): Config {
  const logLevel = (env["LOG_LEVEL"] ?? "info").toLowerCase();
  if (!isLevel(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of debug, info, warn, error, silent, got ${JSON.stringify(env["LOG_LEVEL"])}`);
  }
  const record = oneOf(env, "RECORD_GREETINGS", ["auto", "off"], "auto");
  const farewells = oneOf(env, "FAREWELLS", ["event", "finalizer"], "event");
  const metrics = oneOf(env, "METRICS", ["on", "off"], "on");
  const replies = oneOf(env, "REPLIES", ["always", "when-asked"], "always");
  const watchNamespace = env["WATCH_NAMESPACE"] === "" ? undefined : env["WATCH_NAMESPACE"];
  if (watchNamespace !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(watchNamespace)) {
    throw new ConfigError(`WATCH_NAMESPACE must be a namespace name, got ${JSON.stringify(watchNamespace)}`);
  }
  const kubeTimeoutMs = integer(env, "KUBE_TIMEOUT_MS", 2_000, 100, 120_000);
  const eventTimeoutMs = integer(env, "EVENT_TIMEOUT_MS", 5_000, 100, 600_000);
  if (eventTimeoutMs < kubeTimeoutMs) {
    throw new ConfigError(`EVENT_TIMEOUT_MS (${eventTimeoutMs}) must be at least KUBE_TIMEOUT_MS (${kubeTimeoutMs}): one event makes at least one API call`);
  }
  const source = env["GREETING_SOURCE"] ?? "/member-greeter";
  if (source === "") throw new ConfigError("GREETING_SOURCE must not be empty");
  return {
    port: integer(env, "PORT", 8080, 0, 65535),
    host: env["HOST"] === "" ? undefined : env["HOST"],
    logLevel,
    greetingSource: source,
    maxBodyBytes: integer(env, "MAX_BODY_BYTES", 1024 * 1024, 1, 64 * 1024 * 1024),
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_MS", 20_000, 0, 3_600_000),
    recordGreetings: record,
    kubeTimeoutMs,
    kubeMaxConnections: integer(env, "KUBE_MAX_CONNECTIONS", 16, 1, 1024),
    eventTimeoutMs,
    farewells,
    watchNamespace,
    metrics,
    replies,
  };
}
