// Stands in, in the bundle only (scripts/bundle.ts), for the undici package,
// which @kubernetes/client-node imports for its own transport: a third of the
// client chunk. The function's calls go through kube-transport.ts (node:https,
// one pool) and never reach the client's transport; if a code path ever did,
// it fails here with a message that says why, instead of quietly opening a
// connection per call again.
const absent = (what: string): never => {
  throw new Error(`undici.${what} is not bundled: Kubernetes API calls go through functions/kube-transport.ts`);
};

export class Agent {
  constructor() {
    absent("Agent");
  }
}

export class ProxyAgent {
  constructor() {
    absent("ProxyAgent");
  }
}

export function fetch(): never {
  return absent("fetch");
}
