# The member-greeter function image. No Docker engine is needed to develop or
# test the project; this is what a cluster runs.

# The base of both stages: Node 24. Another base with node, npm and a `node`
# user of uid 1000 works the same (the tests build on a local Debian one:
# scripts/build-base-image.sh): --build-arg BASE=...
ARG BASE=node:24-alpine

# Build: compile and bundle with the dev dependencies. The bundle (dist/function)
# holds the function and every production dependency it uses, so nothing else
# is needed at run time.
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Behind a proxy that re-signs TLS, npm must trust its CA: give the bundle as a
# build secret (--secret id=npm-ca,src=/path/to/ca.pem). It is mounted for this
# RUN only and never lands in a layer; without it npm trusts Node's own CAs.
RUN --mount=type=secret,id=npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/bundle.ts ./scripts/bundle.ts
COPY functions ./functions
RUN npm run build

# Pre-warm Node's compile cache for the start-up path and for the chunks loaded
# off it: start the bundle, wait until it answers /healthz, then send it
# one Member add event and one GET /metrics, and stop it with SIGTERM; its
# handler exits 0 and Node writes the cache at exit. The add event runs the
# Kubernetes client chunk (loaded in the background at start-up, since a
# kubeconfig is given) without a cluster: the kubeconfig names an API server
# on a port where nothing listens, so the claim fails at once, and the answer
# must be that 503 (anything else means the chunk was not reached). GET
# /metrics loads the process-metrics chunk. Node only uses an entry written by the same
# Node build (same base image), for the same absolute file path (same WORKDIR
# as the final stage) and by the same uid (the cache's subfolder is named after
# it): so it runs as the final stage's USER.
# The wait is node itself (the image has no curl) polling /healthz every 50 ms,
# on a port found free first: done as soon as the function answers, however
# loaded the builder, and bounded: the RUN fails once node . has exited, or
# after 60 s without an answer. It also fails unless node . exits 0 on SIGTERM
# (not if it crashed, or died of the signal) and the cache holds entries (its
# subfolder alone is not enough: Node makes that at start, before any entry).
# Node writes entries 0600; the chmod lets the runtime user read them once
# root owns them.
RUN mkdir .compile-cache && chown 1000:1000 .compile-cache
USER 1000:1000
RUN set -e; \
    export NODE_ENV=production HOST=127.0.0.1; \
    PORT=$(node -e 'const s = require("node:net").createServer().listen(0, process.env.HOST, () => { console.log(s.address().port); s.close(); });'); \
    export PORT; \
    kubeconfig=$(mktemp); \
    printf '%s\n' 'apiVersion: v1' 'kind: Config' 'current-context: warm-up' \
      'clusters: [{name: warm-up, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]' \
      'users: [{name: warm-up, user: {token: warm-up}}]' \
      'contexts: [{name: warm-up, context: {cluster: warm-up, user: warm-up, namespace: default}}]' > "$kubeconfig"; \
    KUBECONFIG="$kubeconfig" NODE_COMPILE_CACHE=/app/.compile-cache node . & \
    pid=$!; \
    if ! node -e ' \
      const [pid, seconds] = process.argv.slice(1); \
      const deadline = Date.now() + 1000 * Number(seconds); \
      const running = () => { try { return !/\) Z /.test(require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { return false; } }; \
      (async () => { \
        while (Date.now() < deadline) { \
          if (!running()) { console.error("node . exited before it answered /healthz"); process.exit(1); } \
          const url = `http://${process.env.HOST}:${process.env.PORT}/healthz`; \
          if (await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)) break; \
          await new Promise((r) => setTimeout(r, 50)); \
        } \
        if (Date.now() >= deadline) { console.error(`node . did not answer /healthz within ${seconds} s`); process.exit(1); } \
        const base = `http://${process.env.HOST}:${process.env.PORT}/`; \
        const member = { apiVersion: "helloworld.apimeister.com/v1", kind: "Member", metadata: { name: "warm-up", namespace: "default", uid: "warm-up", resourceVersion: "1" }, spec: { memberOf: "warm-up" } }; \
        const add = await fetch(base, { method: "POST", body: JSON.stringify(member), headers: { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "warm-up", "ce-source": "warm-up", "ce-type": "dev.knative.apiserver.resource.add" } }); \
        if (add.status !== 503) { console.error(`the warm-up add event was answered ${add.status}, not 503: ${await add.text()}`); process.exit(1); } \
        const metrics = await fetch(`${base}metrics`); \
        if (!metrics.ok) { console.error(`GET /metrics answered ${metrics.status}`); process.exit(1); } \
        process.exit(0); \
      })();' "$pid" 60; \
    then kill -KILL "$pid" 2>/dev/null || true; exit 1; fi; \
    kill -TERM "$pid"; \
    wait "$pid"; \
    rm -f "$kubeconfig"; \
    test -n "$(find /app/.compile-cache -type f)"; \
    chmod -R a+rX,go-w /app/.compile-cache

# Run: Node 24, the bundle only (no node_modules), non-root, nothing written at
# run time, so it runs with readOnlyRootFilesystem: true.
FROM ${BASE}
ENV NODE_ENV=production
# Read at start-up; read-only here, so Node silently writes nothing back.
ENV NODE_COMPILE_CACHE=/app/.compile-cache
WORKDIR /app
# Owned by root and not writable by the user the process runs as.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/dist/function ./dist/function
COPY --from=build --chown=0:0 /app/.compile-cache ./.compile-cache
# uid 1000 is "node" in the official images; numeric so runAsNonRoot can check it.
USER 1000:1000
EXPOSE 8080
CMD ["node", "."]
