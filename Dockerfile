# The member-greeter function image. No Docker engine is needed to develop or
# test the project; this is what a cluster runs.

# Build: compile TypeScript with the dev dependencies, then keep only what runs.
FROM node:24-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
# Only functions/ is compiled: it is what `node .` runs (source/ holds sample
# events, no code).
COPY functions ./functions
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Run: Node 24, production dependencies only, non-root, nothing written at run time
# (so it runs with readOnlyRootFilesystem: true).
FROM node:24-alpine
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the user the process runs as.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# uid 1000 is "node" in the official images; numeric so runAsNonRoot can check it.
USER 1000:1000
EXPOSE 8080
CMD ["node", "."]
