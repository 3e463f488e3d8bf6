// What can go wrong on the Kubernetes side, by meaning rather than by status
// code. The Kubernetes I/O raises these; what each means for the sender of an
// event (retry or not) is decided at the HTTP boundary alone (errors.ts).
export type KubeFailure =
  /** Unreachable, overloaded (429, 5xx) or too slow: the same call may work later. */
  | "unavailable"
  /** Refused for good: forbidden, invalid, a kubeconfig the client cannot use. */
  | "rejected"
  /** The object (or its kind) does not exist. */
  | "not-found"
  /** A precondition failed: the object changed since it was read. */
  | "conflict";

export class KubeError extends Error {
  override readonly name = "KubeError";
  readonly kind: KubeFailure;

  constructor(kind: KubeFailure, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
  }
}
