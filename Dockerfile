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

# Run: Node 24, the bundle only (no node_modules), non-root, nothing written at
# run time, so it runs with readOnlyRootFilesystem: true.
FROM node:24-alpine
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the user the process runs as.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/dist/function ./dist/function
# uid 1000 is "node" in the official images; numeric so runAsNonRoot can check it.
USER 1000:1000
EXPOSE 8080
CMD ["node", "."]
