// Whether the sender of an event can use a reply event: Knative's Broker and
// Channel dispatchers say so with `Prefer: reply` (RFC 7240 preferences, a
// comma-separated list, each `token[=value][; params]`). Pure: the header's
// value in, a yes or no out.

/** True when the Prefer header(s) name the `reply` preference. */
export function prefersReply(header: string | readonly string[] | undefined): boolean {
  if (header === undefined) return false;
  const values = typeof header === "string" ? [header] : header;
  for (const value of values) {
    for (const preference of value.split(",")) {
      const token = preference.split(/[;=]/, 1)[0]?.trim().toLowerCase();
      if (token === "reply") return true;
    }
  }
  return false;
}
