#!/usr/bin/env bash
# The images the single-node cluster (npm run test:cluster) runs, built with
# podman (no registry is reachable) and saved as archives for `ctr images import`:
#   localhost/greeter-cluster/<name>:<tag>  FROM scratch + one static binary of
#       scripts/build-cluster-tools.sh: eventing-controller, eventing-webhook,
#       eventing-mtping, eventing-apiserver-receive-adapter (Knative Eventing),
#       coredns, pause (the pod sandbox); USER 65532. <tag> = the tools' hash.
#   localhost/member-greeter:cluster-<hash>  the function, from this tree's
#       Dockerfile on the local Node 24 base (scripts/build-base-image.sh), <hash>
#       covering what the Dockerfile copies. Its own tag: npm run test:image's
#       localhost/member-greeter:test may be rebuilt by another run meanwhile.
# Archives are cached next to the binaries: <tools>/images-<tag>-<recipe>.tar and
# <tools>/greeter-<hash>.tar (<recipe>, and <hash> too, cover this script).
#
# Usage: build-cluster-images.sh TOOLS_DIR. stdout, last lines: `images <tar>`,
# `greeter <tar> <image>`, `tag <tag>`. Progress and timings on stderr.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(cd "${1:?usage: build-cluster-images.sh TOOLS_DIR (from scripts/build-cluster-tools.sh)}" && pwd -P)
# shellcheck source=podman.sh
. "$repo/scripts/podman.sh"

log() { echo "build-cluster-images: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

tag=$(basename "$bin"); tag=${tag#cluster-}; tag=${tag:0:12}
# image name : binary under $bin
images=(
  "eventing-controller:knative-eventing/controller"
  "eventing-webhook:knative-eventing/webhook"
  "eventing-mtping:knative-eventing/mtping"
  "eventing-apiserver-receive-adapter:knative-eventing/apiserver_receive_adapter"
  "coredns:coredns/coredns"
  "pause:pause/pause"
)

exec 9>"$bin/.images-lock"
flock 9

# The archive also depends on this script (how the images are made).
recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-8)
tar="$bin/images-$tag-$recipe.tar"
if [[ ! -s "$tar" ]]; then
  total=$(now)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  names=()
  for entry in "${images[@]}"; do
    name=${entry%%:*} file=${entry#*:}
    ctx="$tmp/$name"
    mkdir -p "$ctx"
    cp "$bin/$file" "$ctx/app"
    printf 'FROM scratch\nCOPY app /app\nUSER 65532:65532\nENTRYPOINT ["/app"]\n' >"$ctx/Containerfile"
    ref="localhost/greeter-cluster/$name:$tag"
    podman_cmd build -q "${PODMAN_BUILD_FLAGS[@]}" -f "$ctx/Containerfile" -t "$ref" "$ctx" >/dev/null
    names+=("$ref")
  done
  podman_cmd save -q -m --format docker-archive -o "$tmp/images.tar" "${names[@]}"
  mv "$tmp/images.tar" "$tar"
  # The archive is the cache: the podman copies are not needed any more.
  podman_cmd rmi "${names[@]}" >/dev/null
  log "built and saved ${#names[@]} images in $(since "$total")s: $tar"
  for old in "$bin"/images-*.tar; do [[ "$old" == "$tar" ]] || rm -f "$old"; done
else
  log "up to date: $tar"
fi

# The function's image, from this tree.
ghash=$(
  cd "$repo"
  { cat scripts/build-cluster-images.sh Dockerfile .dockerignore package.json package-lock.json tsconfig.json scripts/bundle.ts scripts/build-base-image.sh
    find functions -type f | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-12
)
gimage="localhost/member-greeter:cluster-$ghash"
gtar="$bin/greeter-$ghash.tar"
if [[ ! -s "$gtar" ]]; then
  t=$(now)
  base=$(bash "$repo/scripts/build-base-image.sh" | tail -n 1)
  secret=()
  if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -f "$NODE_EXTRA_CA_CERTS" ]]; then secret=(--secret "id=npm-ca,src=$NODE_EXTRA_CA_CERTS"); fi
  podman_cmd build -q "${PODMAN_BUILD_FLAGS[@]}" --build-arg "BASE=$base" "${secret[@]}" -t "$gimage" "$repo" >/dev/null
  podman_cmd save -q --format docker-archive -o "$gtar.tmp" "$gimage"
  mv "$gtar.tmp" "$gtar"
  log "built and saved $gimage in $(since "$t")s: $gtar"
  # Earlier builds of this script (other trees' contents) are not needed any more: ours only.
  for old in "$bin"/greeter-*.tar; do [[ "$old" == "$gtar" ]] || rm -f "$old"; done
  podman_cmd images --format '{{.Repository}}:{{.Tag}}' localhost/member-greeter | { grep -E '^localhost/member-greeter:cluster-[0-9a-f]{12}$' || true; } |
    while read -r ref; do [[ "$ref" == "$gimage" ]] || podman_cmd rmi "$ref" >/dev/null || true; done
else
  log "up to date: $gtar"
fi

echo "images $tar"
echo "greeter $gtar $gimage"
echo "tag $tag"
