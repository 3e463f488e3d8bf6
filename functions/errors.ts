// One error type for the whole function. Every failure that reaches the HTTP
// boundary is an HttpError (or becomes ERR_INTERNAL there), so the status code,
// the stable code and the message a client sees are decided in one registry.
import { KubeError } from "./kube-errors.ts";

// Status codes follow what Knative does with them (see docs/http-contract.md):
// 4xx is final, 503 asks the sender to retry, 500 is a bug and is not retried.
export const errorCodes = {
  ERR_BAD_REQUEST: 400,
  ERR_MALFORMED_JSON: 400,
  ERR_INVALID_ENCODING: 400,
  ERR_NOT_A_CLOUDEVENT: 400,
  ERR_INVALID_ATTRIBUTE: 400,
  ERR_UNSUPPORTED_SPECVERSION: 400,
  ERR_INVALID_MEMBER: 400,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_BODY_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_INTERNAL: 500,
  ERR_NO_CLUSTER: 500,
  ERR_CLUSTER_REJECTED: 500,
  ERR_CLUSTER_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, e.g. Allow on a 405. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; headers?: Record<string, string> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = errorCodes[code];
    this.headers = options.headers ?? {};
  }

  /** Bad input from the sender: 4xx. */
  get isClientError(): boolean {
    return this.status < 500;
  }
}

/**
 * Whatever was thrown, as an HttpError; anything unknown is an internal error.
 * Kubernetes failures are mapped here and nowhere else. No Kubernetes 404 may
 * become an HTTP 404 (Knative retries a 404 as if the sink were not there yet);
 * a conflict that reached this far means the claim kept losing to concurrent
 * writers, which a later delivery can win.
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof KubeError) {
    switch (err.kind) {
      case "unavailable":
      case "conflict":
        return new HttpError("ERR_CLUSTER_UNAVAILABLE", `${err.message}; try again later`, { cause: err });
      case "rejected":
      case "not-found":
        return new HttpError("ERR_CLUSTER_REJECTED", err.message, { cause: err });
    }
  }
  return new HttpError("ERR_INTERNAL", "internal error", { cause: err });
}
