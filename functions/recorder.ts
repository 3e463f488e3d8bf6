// Records each greeting where Kubernetes users look: status.team (and the last
// greeting) on the Member, and a Kubernetes Event that `kubectl describe` shows.
//
// Failure policy: the greeting has already been logged and is still replied
// with 200, whatever happens here. Answering 5xx would make Knative redeliver
// and the member would be greeted twice; so transient failures are retried here
// a few times within a short budget, and a write that still fails is logged
// (warn) and given up. The cost is that status.team may stay behind, and the
// next update of that member is then judged against the older team.
import type { Greeting, Reason } from "./greeting.ts";
import { HttpError } from "./errors.ts";
import type { GreetingRecorder } from "./handler.ts";
import type { KubeApi } from "./kube-client.ts";
import type { Logger } from "./logger.ts";
import type { Member, MemberRef } from "./member.ts";

export const eventReasons: Readonly<Record<Reason, string>> = {
  welcome: "Welcomed",
  "team-change": "TeamChanged",
  farewell: "SaidFarewell",
};

export interface RecorderOptions {
  readonly api: () => Promise<KubeApi>;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Pauses between attempts; its length is the number of retries. */
  readonly retryDelaysMs?: readonly number[];
  readonly sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isFullMember(member: Member | MemberRef): member is Member {
  return "team" in member;
}

export function createRecorder(options: RecorderOptions): GreetingRecorder {
  const { api, logger, now } = options;
  const delays = options.retryDelaysMs ?? [100, 400];
  const sleep = options.sleep ?? defaultSleep;

  const attempt = async (what: string, greeting: Greeting, write: (kube: KubeApi) => Promise<void>): Promise<void> => {
    const fields = { member: greeting.member.name, namespace: greeting.member.namespace, write: what };
    for (let i = 0; ; i++) {
      try {
        await write(await api());
        return;
      } catch (err) {
        const httpError = err instanceof HttpError ? err : undefined;
        if (httpError?.code === "ERR_NOT_FOUND") {
          logger.info(`member is gone, its ${what} was not recorded`, fields);
          return;
        }
        const delay = delays[i];
        if (httpError?.code !== "ERR_CLUSTER_UNAVAILABLE" || delay === undefined) {
          logger.warn(`recording the greeting failed: ${err instanceof Error ? err.message : String(err)}`, { ...fields, attempts: i + 1 });
          return;
        }
        await sleep(delay);
      }
    }
  };

  return {
    async record(greeting, member) {
      const time = now();
      const writes: Promise<void>[] = [];
      // A farewell has no object left to write a status on.
      if (greeting.reason !== "farewell" && isFullMember(member)) {
        const status = {
          team: member.team,
          greeting: greeting.text,
          greetedAt: time.toISOString(),
          ...(member.generation === undefined ? {} : { observedGeneration: member.generation }),
        };
        writes.push(attempt("status", greeting, (kube) => kube.patchMemberStatus(member, status)));
      }
      const uid = isFullMember(member) ? member.uid : undefined;
      writes.push(
        attempt("event", greeting, (kube) =>
          kube.createEvent({ member: { name: member.name, namespace: member.namespace, uid }, reason: eventReasons[greeting.reason], message: greeting.text, time }),
        ),
      );
      await Promise.all(writes);
    },
  };
}
