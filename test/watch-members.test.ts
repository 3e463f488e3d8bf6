// The stand-in source's decisions without a server: what a watch event means,
// which resourceVersion the next watch resumes from, what a re-list after 410
// must send, a send queue that survives a failed send, and the watch loop
// driven by a scripted watcher (resume, re-list on either form of 410, no
// abort listener left behind).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { getEventListeners } from "node:events";
import path from "node:path";
import { describe, it } from "node:test";
import { createLogger } from "../functions/logger.ts";
import type { WatchChange, WatchedObject } from "../source/member-events.ts";
import {
  applyChange,
  classifyWatchDone,
  classifyWatchEvent,
  createSendQueue,
  isGoneError,
  isGoneStatus,
  nextResourceVersion,
  replaceStore,
  resumeDelayMs,
  storeOf,
  watchLoop,
  watchOnce,
  type Listing,
  type SendQueue,
  type Watcher,
} from "../source/watch-members.ts";

const repoRoot = path.resolve(import.meta.dirname, "..");

function member(name: string, resourceVersion: string, team?: string, uid = `uid-${name}`): WatchedObject {
  return {
    apiVersion: "helloworld.apimeister.com/v1",
    kind: "Member",
    metadata: { name, namespace: "default", resourceVersion, uid },
    spec: team === undefined ? {} : { memberOf: team },
  } as WatchedObject;
}

const bookmark = (resourceVersion: string): WatchedObject =>
  ({ apiVersion: "helloworld.apimeister.com/v1", kind: "Member", metadata: { resourceVersion } }) as WatchedObject;

const goneStatus = {
  kind: "Status",
  apiVersion: "v1",
  status: "Failure",
  message: "too old resource version: 5 (20)",
  reason: "Expired",
  code: 410,
};

function httpError(statusCode: number): Error {
  return Object.assign(new Error(statusCode === 410 ? "Gone" : "Internal Server Error"), { statusCode });
}

const rv = (object: WatchedObject): string => String((object.metadata as { resourceVersion?: string } | undefined)?.resourceVersion);

describe("source: what a watch event means", () => {
  it("ADDED, MODIFIED and DELETED are changes, with the object's resourceVersion", () => {
    for (const phase of ["ADDED", "MODIFIED", "DELETED"] as const) {
      const event = classifyWatchEvent(phase, member("m1", "7", "blue"));
      assert.equal(event.kind, "change");
      assert.ok(event.kind === "change");
      assert.equal(event.change, phase);
      assert.equal(event.resourceVersion, "7");
    }
  });

  it("a BOOKMARK only carries a resourceVersion", () => {
    assert.deepEqual(classifyWatchEvent("BOOKMARK", bookmark("42")), { kind: "bookmark", resourceVersion: "42" });
  });

  it("an ERROR with a 410 Status is an expiry, any other ERROR is an error", () => {
    assert.deepEqual(classifyWatchEvent("ERROR", goneStatus), { kind: "gone", message: "too old resource version: 5 (20)" });
    assert.deepEqual(classifyWatchEvent("ERROR", { kind: "Status", code: 500, message: "etcd is down" }), { kind: "error", message: "etcd is down" });
  });

  it("an unknown phase, or a change without an object name, is not a change", () => {
    assert.deepEqual(classifyWatchEvent("SOMETHING", member("m1", "1")), { kind: "unknown", phase: "SOMETHING" });
    assert.deepEqual(classifyWatchEvent("ADDED", { metadata: {} }), { kind: "unknown", phase: "ADDED" });
    assert.deepEqual(classifyWatchEvent("ADDED", null), { kind: "unknown", phase: "ADDED" });
  });

  it("410 is recognised as a Status and as the error a watch request ends with", () => {
    assert.equal(isGoneStatus(goneStatus), true);
    assert.equal(isGoneStatus({ kind: "Status", code: 500 }), false);
    assert.equal(isGoneStatus("Gone"), false);
    assert.equal(isGoneError(httpError(410)), true);
    assert.equal(isGoneError({ code: 410 }), true);
    assert.equal(isGoneError(httpError(500)), false);
    assert.equal(isGoneError(null), false);
    assert.equal(isGoneError(new Error("socket hang up")), false);
  });

  it("how a watch ended: the server's close and the client's idle timeout are resumed at once, errors after 1 s", () => {
    assert.deepEqual(classifyWatchDone(null), { kind: "closed", reason: "closed by the server" });
    assert.deepEqual(classifyWatchDone(new DOMException("The operation was aborted due to timeout", "TimeoutError")), {
      kind: "closed",
      reason: "no data for 30 s",
    });
    assert.deepEqual(classifyWatchDone(httpError(410)), { kind: "gone", message: "Gone" });
    assert.deepEqual(classifyWatchDone(new Error("connect ECONNREFUSED")), { kind: "failed", message: "connect ECONNREFUSED" });
    assert.equal(resumeDelayMs({ kind: "closed", reason: "closed by the server" }, 7_000, false), 0);
    assert.equal(resumeDelayMs({ kind: "closed", reason: "closed by the server" }, 10, false), 1000);
    assert.equal(resumeDelayMs({ kind: "failed", message: "x" }, 7_000, false), 1000);
    // A 410 on resuming is listed again at once; a 410 on what was just listed waits.
    assert.equal(resumeDelayMs({ kind: "gone", message: "x" }, 10, false), 0);
    assert.equal(resumeDelayMs({ kind: "gone", message: "x" }, 10, true), 1000);
  });
});

describe("source: resourceVersion bookkeeping", () => {
  it("changes and bookmarks move it forward; errors and nameless events do not", () => {
    let version = "10";
    version = nextResourceVersion(version, classifyWatchEvent("ADDED", member("m1", "11")));
    assert.equal(version, "11");
    version = nextResourceVersion(version, classifyWatchEvent("BOOKMARK", bookmark("15")));
    assert.equal(version, "15");
    version = nextResourceVersion(version, classifyWatchEvent("ERROR", goneStatus));
    assert.equal(version, "15");
    version = nextResourceVersion(version, classifyWatchEvent("MODIFIED", { metadata: { name: "m1" } }));
    assert.equal(version, "15");
    version = nextResourceVersion(version, classifyWatchEvent("DELETED", member("m1", "16")));
    assert.equal(version, "16");
  });
});

describe("source: the store and a re-list (the informer's Replace)", () => {
  it("a watch change updates the store: added and modified are kept, deleted are dropped", () => {
    const store = storeOf([member("a", "1")]);
    applyChange(store, "ADDED", member("b", "2"));
    applyChange(store, "MODIFIED", member("a", "3", "red"));
    applyChange(store, "DELETED", member("b", "4"));
    assert.deepEqual([...store.keys()], ["a"]);
    assert.equal(rv(store.get("a") as WatchedObject), "3");
  });

  it("sends an update for new and changed Members, a delete with the last object for gone ones, nothing for unchanged", () => {
    const known = storeOf([member("same", "1", "blue"), member("moved", "2", "blue"), member("gone", "3", "green")]);
    const { store, changes } = replaceStore(known, [member("same", "1", "blue"), member("moved", "9", "red"), member("new", "10", "blue")]);
    assert.deepEqual(
      changes.map((c) => [c.change, c.object]),
      [
        ["MODIFIED", member("moved", "9", "red")],
        ["MODIFIED", member("new", "10", "blue")],
        ["DELETED", member("gone", "3", "green")],
      ],
    );
    assert.deepEqual([...store.keys()].sort(), ["moved", "new", "same"]);
  });

  it("a Member deleted and created again under the same name: a delete for the old one, then an update for the new one", () => {
    const known = storeOf([member("m", "1", "blue", "uid-old")]);
    const { changes } = replaceStore(known, [member("m", "8", "red", "uid-new")]);
    assert.deepEqual(
      changes.map((c) => [c.change, rv(c.object)]),
      [
        ["DELETED", "1"],
        ["MODIFIED", "8"],
      ],
    );
  });

  it("an unchanged list sends nothing", () => {
    const listed = [member("a", "1"), member("b", "2")];
    assert.deepEqual(replaceStore(storeOf(listed), listed).changes, []);
  });
});

describe("source: the send queue", () => {
  it("goes on after a send that throws or rejects, one at a time, in order", async () => {
    const sent: string[] = [];
    const failed: string[] = [];
    let running = 0;
    let mostAtOnce = 0;
    const queue = createSendQueue(
      async (change, object) => {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        try {
          const name = String((object.metadata as { name?: string }).name);
          await new Promise((resolve) => setTimeout(resolve, 2));
          if (name === "throws") throw new TypeError("cannot build the event");
          if (name === "rejects") return await Promise.reject(new Error("sink exploded"));
          sent.push(`${change} ${name}`);
        } finally {
          running--;
        }
      },
      (err, change, object) =>
        failed.push(`${change} ${String((object.metadata as { name?: string }).name)}: ${err instanceof Error ? err.message : String(err)}`),
    );
    for (const [change, name] of [
      ["ADDED", "a"],
      ["MODIFIED", "throws"],
      ["MODIFIED", "b"],
      ["DELETED", "rejects"],
      ["DELETED", "c"],
    ] as const) {
      queue.enqueue(change, member(name, "1"));
    }
    await queue.drained();
    assert.deepEqual(sent, ["ADDED a", "MODIFIED b", "DELETED c"]);
    assert.deepEqual(failed, ["MODIFIED throws: cannot build the event", "DELETED rejects: sink exploded"]);
    assert.equal(mostAtOnce, 1);
  });

  it("goes on even when reporting the failure throws, and when send throws synchronously", async () => {
    const sent: string[] = [];
    const queue = createSendQueue(
      (_change, object) => {
        const name = String((object.metadata as { name?: string }).name);
        if (name === "sync") throw new Error("thrown before any promise");
        sent.push(name);
        return Promise.resolve();
      },
      () => {
        throw new Error("the logger is broken too");
      },
    );
    queue.enqueue("ADDED", member("sync", "1"));
    queue.enqueue("ADDED", member("after", "2"));
    await queue.drained();
    assert.deepEqual(sent, ["after"]);
  });
});

// ---------------------------------------------------------------------------
// The loop, with a scripted watcher and lister.

type Step = { readonly event: readonly [string, unknown] } | { readonly done: unknown } | { readonly probe: () => void };

interface WatchCall {
  readonly resourceVersion: unknown;
  readonly allowWatchBookmarks: unknown;
}

/** Plays one scripted session per watch call; once the script is used up it calls `exhausted` and stays open. */
class ScriptedWatcher implements Watcher {
  readonly calls: WatchCall[] = [];
  aborts = 0;
  readonly #sessions: Step[][];
  readonly #exhausted: () => void;

  constructor(sessions: Step[][], exhausted: () => void) {
    this.#sessions = sessions;
    this.#exhausted = exhausted;
  }

  async watch(
    _path: string,
    query: Readonly<Record<string, string | boolean>>,
    callback: (phase: string, object: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<{ abort(): void }> {
    this.calls.push({ resourceVersion: query["resourceVersion"], allowWatchBookmarks: query["allowWatchBookmarks"] });
    let aborted = false;
    const request = {
      abort: () => {
        if (aborted) return;
        aborted = true;
        this.aborts++;
      },
    };
    const steps = this.#sessions.shift();
    void (async () => {
      if (steps === undefined) {
        await new Promise(setImmediate);
        this.#exhausted();
        return;
      }
      for (const step of steps) {
        await new Promise(setImmediate);
        if (aborted) return;
        if ("event" in step) callback(step.event[0], step.event[1]);
        else if ("done" in step) return done(step.done);
        else step.probe();
      }
    })();
    return request;
  }
}

function recordingQueue(): SendQueue & { readonly sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    enqueue(change: WatchChange, object: WatchedObject) {
      sent.push(`${change} ${String((object.metadata as { name?: string }).name)}@${rv(object)}`);
    },
    drained: () => Promise.resolve(),
  };
}

interface LoopRun {
  readonly watcher: ScriptedWatcher;
  readonly sent: readonly string[];
  readonly lists: number;
  readonly logs: readonly Record<string, unknown>[];
  readonly listenersSeen: readonly number[];
  readonly listenersAfter: number;
}

async function runLoop(listings: Listing[], sessions: (probe: () => Step) => Step[][]): Promise<LoopRun> {
  const controller = new AbortController();
  const listenersSeen: number[] = [];
  const probe = (): Step => ({ probe: () => listenersSeen.push(getEventListeners(controller.signal, "abort").length) });
  const watcher = new ScriptedWatcher(sessions(probe), () => controller.abort());
  const queue = recordingQueue();
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: { write: (chunk) => lines.push(chunk) } });
  let lists = 0;
  await watchLoop(
    {
      path: "/apis/helloworld.apimeister.com/v1/namespaces/default/members",
      list: async () => {
        const listing = listings[lists++];
        if (listing === undefined) throw new Error("listed more often than the script expects");
        return listing;
      },
      watcher,
      queue,
      logger,
      pause: () => Promise.resolve(),
      // Each watch "lasts" 5 s, as if the server had ended it at its timeout.
      now: (() => {
        let t = 0;
        return () => (t += 5_000);
      })(),
    },
    controller.signal,
  );
  logger.flush();
  const logs = lines
    .join("")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { watcher, sent: queue.sent, lists, logs, listenersSeen, listenersAfter: getEventListeners(controller.signal, "abort").length };
}

describe("source: the watch loop", () => {
  it("first start: lists, sends nothing for what exists, watches from the list's resourceVersion with bookmarks", async () => {
    const run = await runLoop([{ resourceVersion: "100", items: [member("old", "90", "blue")] }], () => [
      [{ event: ["ADDED", member("new", "101", "red")] }, { done: null }],
    ]);
    assert.equal(run.lists, 1);
    assert.deepEqual(run.watcher.calls[0], { resourceVersion: "100", allowWatchBookmarks: true });
    assert.deepEqual(run.sent, ["ADDED new@101"]);
  });

  it("resumes each watch from the last resourceVersion seen (events and bookmarks), without listing again", async () => {
    const run = await runLoop([{ resourceVersion: "100", items: [] }], () => [
      [{ event: ["ADDED", member("a", "101")] }, { event: ["MODIFIED", member("a", "102", "red")] }, { done: null }],
      [{ event: ["BOOKMARK", bookmark("150")] }, { done: new DOMException("The operation was aborted due to timeout", "TimeoutError") }],
      [{ done: new Error("read ECONNRESET") }],
      [{ event: ["DELETED", member("a", "151")] }, { done: null }],
    ]);
    assert.equal(run.lists, 1);
    assert.deepEqual(
      run.watcher.calls.map((c) => c.resourceVersion),
      ["100", "102", "150", "150", "151"],
    );
    assert.deepEqual(run.sent, ["ADDED a@101", "MODIFIED a@102", "DELETED a@151"]);
    assert.equal(run.logs.filter((l) => l["msg"] === "watch ended; resuming").length, 3);
  });

  for (const [how, gone] of [
    ["as an ERROR event with a 410 Status", { event: ["ERROR", goneStatus] } as const],
    ["as a 410 answer to the watch request", { done: httpError(410) } as const],
  ] as const) {
    it(`410 ${how}: lists again, sends what changed since (updates, then deletes with the last object), watches from the new list`, async () => {
      const run = await runLoop(
        [
          { resourceVersion: "100", items: [member("same", "50", "blue"), member("moved", "60", "blue"), member("gone", "70", "green")] },
          {
            resourceVersion: "300",
            items: [member("same", "50", "blue"), member("moved", "210", "red"), member("born", "220", "blue"), member("seen", "105")],
          },
        ],
        () => [
          [{ event: ["ADDED", member("seen", "105")] }, { done: null }],
          [gone, { event: ["ADDED", member("after-the-410", "999")] }],
          [{ event: ["ADDED", member("later", "301")] }, { done: null }],
        ],
      );
      assert.equal(run.lists, 2);
      assert.deepEqual(
        run.watcher.calls.map((c) => c.resourceVersion),
        ["100", "105", "300", "301"],
      );
      // "seen" was already known at its resourceVersion: nothing sent again. Nothing after the 410 in that watch counts.
      assert.deepEqual(run.sent, ["ADDED seen@105", "MODIFIED moved@210", "MODIFIED born@220", "DELETED gone@70", "ADDED later@301"]);
      const relisted = run.logs.find((l) => l["msg"] === "re-listed members");
      assert.equal(relisted?.["updates"], 2);
      assert.equal(relisted?.["deletes"], 1);
      assert.ok(run.logs.some((l) => l["msg"] === "watch expired (410 Gone); listing again"));
    });
  }

  it("a failed list is retried, and the first list's store is what a later re-list is compared with", async () => {
    let calls = 0;
    const controller = new AbortController();
    const queue = recordingQueue();
    const watcher = new ScriptedWatcher([[{ done: httpError(410) }]], () => controller.abort());
    await watchLoop(
      {
        path: "/p",
        list: async () => {
          calls++;
          if (calls === 1) throw new Error("connect ECONNREFUSED");
          return calls === 2 ? { resourceVersion: "10", items: [member("a", "5")] } : { resourceVersion: "20", items: [member("a", "5")] };
        },
        watcher,
        queue,
        logger: createLogger({ level: "silent" }),
        pause: () => Promise.resolve(),
      },
      controller.signal,
    );
    assert.equal(calls, 3);
    assert.deepEqual(queue.sent, []);
  });

  it("holds one abort listener per open watch and leaves none behind, however many watches came and went", async () => {
    const run = await runLoop(
      [
        { resourceVersion: "1", items: [] },
        { resourceVersion: "2", items: [] },
        { resourceVersion: "3", items: [] },
      ],
      (probe) => [
        [probe(), { done: null }],
        [probe(), { done: httpError(410) }],
        [probe(), { event: ["ERROR", goneStatus] }],
        [probe(), { done: null }],
        [probe(), { done: new Error("boom") }],
        [probe(), { done: null }],
      ],
    );
    assert.deepEqual(run.listenersSeen, [1, 1, 1, 1, 1, 1]);
    assert.equal(run.listenersAfter, 0);
  });

  it("an abort ends the open watch at once and aborts its request", async () => {
    const controller = new AbortController();
    const watcher = new ScriptedWatcher([], () => undefined);
    const ended = watchOnce(watcher, "/p", "5", controller.signal, () => undefined);
    await new Promise(setImmediate);
    assert.equal(getEventListeners(controller.signal, "abort").length, 1);
    controller.abort();
    assert.deepEqual(await ended, { kind: "aborted" });
    assert.equal(watcher.aborts, 1);
    assert.equal(getEventListeners(controller.signal, "abort").length, 0);
  });

  it("a request handed over after its watch already ended is aborted", async () => {
    const controller = new AbortController();
    let aborted = 0;
    const watcher: Watcher = {
      async watch(_path, _query, _callback, done) {
        // As @kubernetes/client-node does for a non-200 answer: done first, then the request.
        done(httpError(500));
        return { abort: () => void aborted++ };
      },
    };
    assert.deepEqual(await watchOnce(watcher, "/p", "5", controller.signal, () => undefined), { kind: "failed", message: "Internal Server Error" });
    await new Promise(setImmediate);
    assert.equal(aborted, 1);
    assert.equal(getEventListeners(controller.signal, "abort").length, 0);
  });
});

describe("source: configuration", () => {
  for (const [what, env, message] of [
    ["without K_SINK", {}, "fatal: K_SINK must name the URL to send Member events to"],
    ["with a bad MODE", { K_SINK: "http://127.0.0.1:9/", MODE: "Everything" }, 'fatal: MODE must be Resource or Reference, got "Everything"'],
  ] as const) {
    it(`exits 1 with one JSON error line ${what}`, () => {
      const result = spawnSync(process.execPath, [path.join(repoRoot, "source", "watch-members.ts")], {
        env: { PATH: process.env["PATH"] ?? "", ...env },
        encoding: "utf8",
        timeout: 20_000,
      });
      assert.equal(result.status, 1, result.stderr);
      const lines = result.stdout.split("\n").filter((l) => l !== "");
      assert.equal(lines.length, 1, result.stdout);
      const record = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
      assert.equal(record["level"], "error");
      assert.equal(record["msg"], message);
      assert.equal(result.stderr, "");
    });
  }
});
