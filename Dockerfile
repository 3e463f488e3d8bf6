# The member-greeter function image. No Docker engine is needed to develop or
# test the project; this is what a cluster runs.

# Build: compile and bundle with the dev dependencies. The bundle (dist/function)
# holds the function and every production dependency it uses, so nothing else
# is needed at run time.
FROM node:24-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle.ts ./scripts/bundle.ts
COPY functions ./functions
RUN npm run build

# Pre-warm Node's compile cache for the start-up path: start the bundle once and
# stop it with SIGTERM; its handler exits 0 and Node writes the cache at exit.
# Node only uses an entry written by the same Node build (same base image), for
# the same absolute file path (same WORKDIR as the final stage) and by the same
# uid (the cache's subfolder is named after it): so it runs as the final stage's
# USER. The RUN fails unless node exits 0 (not if it crashed, or died of the
# signal before its handler was installed) and the cache is filled. Node writes
# entries 0600; the chmod lets the runtime user read them once root owns them.
RUN mkdir .compile-cache && chown 1000:1000 .compile-cache
USER 1000:1000
RUN export NODE_COMPILE_CACHE=/app/.compile-cache NODE_ENV=production PORT=0 HOST=127.0.0.1 \
 && { node . & sleep 3 && kill -TERM $! && wait $!; } \
 && test -n "$(ls -A /app/.compile-cache)" \
 && chmod -R a+rX,go-w /app/.compile-cache

# Run: Node 24, the bundle only (no node_modules), non-root, nothing written at
# run time, so it runs with readOnlyRootFilesystem: true.
FROM node:24-alpine
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
