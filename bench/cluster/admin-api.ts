// The bench's own Kubernetes calls, as the cluster admin: create the Members
// a round greets, list them and their Events to check the work, clean up, and
// watch Members for the burst. One keep-alive pool of its own, so that these
// calls cost the servers under test nothing but the API server's time (their
// connections are counted by pid, not these).
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { MEMBER_API_VERSION } from "../../functions/member.ts";

export type Json = { readonly [key: string]: unknown };

export const isMap = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

export const NAMESPACE = "default";
const MEMBERS = `/apis/${MEMBER_API_VERSION}/namespaces/${NAMESPACE}/members`;
const EVENTS = `/api/v1/namespaces/${NAMESPACE}/events`;
/** Labels every Member the bench creates with its batch, so that a batch is listed and deleted by selector. */
export const BATCH_LABEL = "bench.member-greeter/batch";

export interface WatchEvent {
  readonly type: string;
  readonly object: Json;
  /** Date.now() when it arrived. */
  readonly at: number;
}

export interface AdminApi {
  call(method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; body: unknown }>;
  /** Creates `names` (spec.memberOf = team, labelled with the batch), `parallel` at a time; the objects as created. */
  createMembers(names: readonly string[], batch: string, team: string, parallel?: number): Promise<Json[]>;
  listMembers(batch: string): Promise<Json[]>;
  /** core/v1 Events of the namespace (events.k8s.io/v1 Events are the same objects). */
  listEvents(): Promise<Json[]>;
  deleteMembers(batch: string): Promise<void>;
  deleteEvents(): Promise<void>;
  /** Watches the batch's Members from now on (`ready`: the API server answered); `stop` ends the watch. */
  watchMembers(batch: string, onEvent: (event: WatchEvent) => void): { readonly ready: Promise<void>; stop(): void };
  close(): void;
}

export function adminApi(server: string, caFile: string, kubeconfig: string): AdminApi {
  const config: unknown = JSON.parse(readFileSync(kubeconfig, "utf8"));
  const users = isMap(config) && Array.isArray(config["users"]) ? (config["users"] as unknown[]) : [];
  const user = isMap(users[0]) ? users[0]["user"] : undefined;
  const token = isMap(user) ? user["token"] : undefined;
  if (typeof token !== "string") throw new Error(`${kubeconfig} has no token`);
  const ca = readFileSync(caFile);
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ca });
  const headers = { authorization: `Bearer ${token}`, accept: "application/json" };

  const call: AdminApi["call"] = (method, path, body, contentType = "application/json") =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        `${server}${path}`,
        { method, agent, headers: text === undefined ? headers : { ...headers, "content-type": contentType }, timeout: 60_000 },
        (res) => {
          let answer = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (answer += chunk));
          res.on("end", () => {
            let parsed: unknown = answer;
            try {
              parsed = JSON.parse(answer);
            } catch {
              // not JSON: kept as text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in time`)));
      req.on("error", reject);
      req.end(text);
    });

  const ok = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const answer = await call(method, path, body);
    if (answer.status >= 300 || !isMap(answer.body)) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
    return answer.body;
  };

  /** Every item of a list, page by page (Event lists grow to thousands). */
  const listAll = async (path: string): Promise<Json[]> => {
    const items: Json[] = [];
    let next: string | undefined;
    do {
      const sep = path.includes("?") ? "&" : "?";
      const page = await ok("GET", `${path}${sep}limit=500${next === undefined ? "" : `&continue=${encodeURIComponent(next)}`}`);
      if (Array.isArray(page["items"])) items.push(...(page["items"] as unknown[]).filter(isMap));
      const meta = page["metadata"];
      next = isMap(meta) && typeof meta["continue"] === "string" && meta["continue"] !== "" ? meta["continue"] : undefined;
    } while (next !== undefined);
    return items;
  };
  const selector = (batch: string): string => `labelSelector=${encodeURIComponent(`${BATCH_LABEL}=${batch}`)}`;

  return {
    call,
    async createMembers(names, batch, team, parallel = 8) {
      const created: Json[] = new Array(names.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < names.length; i = next++) {
          const body = {
            apiVersion: MEMBER_API_VERSION,
            kind: "Member",
            metadata: { name: names[i], namespace: NAMESPACE, labels: { [BATCH_LABEL]: batch } },
            spec: { memberOf: team },
          };
          created[i] = await ok("POST", MEMBERS, body);
        }
      };
      await Promise.all(Array.from({ length: Math.min(parallel, names.length) }, worker));
      return created;
    },
    listMembers: (batch) => listAll(`${MEMBERS}?${selector(batch)}`),
    listEvents: () => listAll(EVENTS),
    async deleteMembers(batch) {
      await ok("DELETE", `${MEMBERS}?${selector(batch)}`);
    },
    async deleteEvents() {
      await ok("DELETE", EVENTS);
    },
    watchMembers(batch, onEvent) {
      let buffered = "";
      let answered: () => void = () => undefined;
      let refused: (err: Error) => void = () => undefined;
      const ready = new Promise<void>((resolve, reject) => {
        answered = resolve;
        refused = reject;
      });
      const req = request(`${server}${MEMBERS}?watch=1&${selector(batch)}`, { method: "GET", agent: false, ca, headers }, (res) => {
        if (res.statusCode === 200) answered();
        else refused(new Error(`watch of members answered ${res.statusCode}`));
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          const at = Date.now();
          buffered += chunk;
          for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (line.trim() === "") continue;
            const event: unknown = JSON.parse(line);
            if (isMap(event) && typeof event["type"] === "string" && isMap(event["object"])) onEvent({ type: event["type"], object: event["object"], at });
          }
        });
        res.on("error", () => undefined);
      });
      req.on("error", (err) => refused(err));
      req.end();
      return { ready, stop: () => req.destroy() };
    },
    close: () => agent.destroy(),
  };
}

/** A field of a JSON object, by path. */
export function field(object: unknown, ...keys: readonly string[]): unknown {
  let here: unknown = object;
  for (const key of keys) here = isMap(here) ? here[key] : undefined;
  return here;
}
