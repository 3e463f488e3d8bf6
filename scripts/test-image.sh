#!/usr/bin/env bash
# npm run test:image: builds the local Node 24 base (cached), then the image
# from the Dockerfile with podman, and runs test/container/ against it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null; then
  echo "test:image needs podman, runc and mmdebstrap: apt-get install podman runc mmdebstrap (as root)" >&2
  exit 1
fi
base=$(bash scripts/build-base-image.sh | tail -n 1)
GREETER_BASE_IMAGE=$base exec node --test --test-concurrency=1 --test-reporter=spec "test/container/*.test.ts"
