// The resync: on a PingSource tick, list every Member of the namespace the
// ApiServerSource watches (in pages, a bounded number converging at a time) and
// converge each whose status disagrees with its spec. It recovers whatever the
// event path lost: events dropped after the sender's retries, changes made
// while the adapter was down or re-listing. Beside concurrent events it is safe
// because every greeting is claimed (claim.ts). One resync runs at a time; a
// tick that arrives while one runs waits for that one.
import type { Claimed, Converge } from "./claim.ts";
import { withDeadline } from "./deadline.ts";
import type { KubeApi } from "./kube-client.ts";
import { KubeError } from "./kube-errors.ts";
import type { Logger } from "./logger.ts";
import { parseMember, type Member } from "./member.ts";
import { noMetrics, type Metrics } from "./metrics.ts";
import type { RequestScope } from "./request-scope.ts";
import type { Span } from "./trace-context.ts";

export interface ResyncSummary {
  readonly listed: number;
  readonly greeted: number;
  /** Members that could not be converged now (API errors); the next resync tries again. */
  readonly failed: number;
  /** List items that are not valid Members; skipped. */
  readonly invalid: number;
  readonly ms: number;
}

export interface ResyncOptions {
  readonly api: (span?: Span) => Promise<KubeApi>;
  /** The namespace whose Members are listed. */
  readonly namespace: () => Promise<string>;
  readonly converge: Converge;
  readonly logger: Logger;
  readonly pageSize?: number;
  readonly concurrency?: number;
  /** Deadline for converging one Member. */
  readonly memberTimeoutMs: number;
  readonly metrics?: Metrics;
}

/**
 * Runs a resync (or joins the one running); `say` says each greeting a
 * convergence claimed. `scope`: the tick that started it, whose logger and
 * span its lines and API calls carry (a tick that joins a running resync
 * joins that one's).
 */
export type Resync = (say: (claimed: Claimed) => void, scope?: RequestScope) => Promise<ResyncSummary>;

export function createResync(options: ResyncOptions): Resync {
  const { api, namespace, converge, memberTimeoutMs } = options;
  const metrics = options.metrics ?? noMetrics;
  const pageSize = options.pageSize ?? 500;
  const concurrency = options.concurrency ?? 8;
  let running: Promise<ResyncSummary> | undefined;

  const run = async (say: (claimed: Claimed) => void, scope: RequestScope | undefined): Promise<ResyncSummary> => {
    const started = performance.now();
    let summary: ResyncSummary;
    try {
      summary = await converged(say, scope, started);
    } catch (err) {
      metrics.resyncDone("failed", undefined, (performance.now() - started) / 1000);
      throw err;
    }
    metrics.resyncDone(summary.failed > 0 ? "partial" : "converged", summary, summary.ms / 1000);
    if (summary.failed > 0) {
      throw new KubeError("unavailable", `resync: ${summary.failed} of ${summary.listed} members could not be converged now`);
    }
    return summary;
  };

  /** Lists and converges every Member; the summary says how many could not be, now. */
  const converged = async (say: (claimed: Claimed) => void, scope: RequestScope | undefined, started: number): Promise<ResyncSummary> => {
    const logger = scope?.logger ?? options.logger;
    const kube = await api(scope?.span);
    const ns = await namespace();
    let listed = 0;
    let greeted = 0;
    let failed = 0;
    let invalid = 0;
    let next: string | undefined;
    do {
      const page = await kube.listMembers(ns, { limit: pageSize, continue: next });
      next = page.continue;
      const members: Member[] = [];
      for (const item of page.items) {
        try {
          members.push(parseMember(item, ns));
        } catch (err) {
          invalid++;
          logger.warn(`resync skips an invalid Member: ${err instanceof Error ? err.message : String(err)}`, { namespace: ns });
        }
      }
      listed += page.items.length;
      // A fixed pool of workers over the page: at most `concurrency` Members in flight.
      let index = 0;
      const worker = async (): Promise<void> => {
        for (let member = members[index++]; member !== undefined; member = members[index++]) {
          try {
            const claimed = await withDeadline(memberTimeoutMs, (signal) => converge(member, signal, scope, { writeEvents: true }));
            if (claimed !== undefined) {
              greeted++;
              say(claimed);
            }
          } catch (err) {
            failed++;
            logger.warn(`resync could not converge the member: ${err instanceof Error ? err.message : String(err)}`, { member: member.name, namespace: ns });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, members.length) }, worker));
    } while (next !== undefined);
    const summary = { listed, greeted, failed, invalid, ms: Math.round(performance.now() - started) };
    logger.info("resync done", { namespace: ns, ...summary });
    return summary;
  };

  return (say, scope) => {
    running ??= run(say, scope).finally(() => {
      running = undefined;
    });
    return running;
  };
}
