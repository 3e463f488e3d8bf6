#!/usr/bin/env bash
# Builds the e2e harness's control-plane binaries from the Go modules pinned in
# test/e2e/tools/*/ (one small module per binary, each naming its main package
# with a `tool` directive in its go.mod):
#   kube-apiserver             test/e2e/tools/kube-apiserver             k8s.io/kubernetes/cmd/kube-apiserver
#   etcd                       test/e2e/tools/etcd                       go.etcd.io/etcd/server/v3
#   apiserver-receive-adapter  test/e2e/tools/apiserver-receive-adapter  knative.dev/eventing/cmd/apiserver_receive_adapter
#
# The binaries are cached in ${GREETER_TOOLS_DIR:-$HOME/.cache/member-greeter/tools}/<hash>/,
# <hash> being the sha256 of every test/e2e/tools/*/go.mod and go.sum (their
# contents and folder names, not where they sit), the Go version and
# this script's build recipe, so they are rebuilt only when a pin changes. The
# repo's .tools/bin (git-ignored) is pointed at that folder.
#
# stdout: only the bin folder's path, as the last line. stderr: progress and
# how long each build took. GREETER_TOOLS_REBUILD=1 forces a rebuild.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0
# readonly: the committed go.mod/go.sum are the pins; never rewrite them here.
export GOFLAGS="-mod=readonly -buildvcs=false"

# Bump when the way the binaries are built changes (flags, names), to bust the cache.
recipe="v1 -trimpath -ldflags=-s -w"

log() { echo "build-tools: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

tools="$repo/test/e2e/tools"
tool_dirs=()
for d in "$tools"/*/; do
  [[ -f "$d/go.mod" ]] && tool_dirs+=("${d%/}")
done
((${#tool_dirs[@]})) || { log "no */go.mod under $tools"; exit 1; }

hash=$(
  {
    echo "recipe=$recipe"
    go env GOVERSION GOOS GOARCH
    for d in "${tool_dirs[@]}"; do
      echo "== ${d##*/}"
      cat "$d/go.mod" "$d/go.sum"
    done
  } | sha256sum | cut -d' ' -f1
)

cache=${GREETER_TOOLS_DIR:-${HOME:?set HOME or GREETER_TOOLS_DIR}/.cache/member-greeter/tools}
bin="$cache/$hash"

complete() {
  local d
  [[ -d "$bin" ]] || return 1
  for d in "${tool_dirs[@]}"; do
    [[ -x "$bin/${d##*/}" ]] || return 1
  done
}

link() {
  mkdir -p "$repo/.tools"
  ln -sfn "$bin" "$repo/.tools/bin"
}

if [[ "${GREETER_TOOLS_REBUILD:-}" != 1 ]] && complete; then
  link
  log "up to date: $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
# One build at a time per cache (parallel CI clones on one machine share it).
exec 9>"$cache/.lock"
flock 9
if [[ "${GREETER_TOOLS_REBUILD:-}" != 1 ]] && complete; then
  link
  log "built by another run meanwhile: $bin"
  echo "$bin"
  exit 0
fi

tmp=$(mktemp -d "$cache/.build-$hash.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

total=$(now)
for d in "${tool_dirs[@]}"; do
  name=${d##*/}
  pkg=$(awk '$1 == "tool" { print $2; exit }' "$d/go.mod")
  [[ -n "$pkg" ]] || { log "$d/go.mod has no tool directive"; exit 1; }
  ldflags="-s -w"
  if [[ "$pkg" == k8s.io/kubernetes/* ]]; then
    # What Kubernetes' own build stamps, so /version and `kubectl version` tell the truth.
    kv=$(cd "$d" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
    minor=${kv#v*.}; minor=${minor%%.*}
    cb=k8s.io/component-base/version
    ldflags+=" -X $cb.gitVersion=$kv -X $cb.gitMajor=1 -X $cb.gitMinor=$minor -X $cb.gitTreeState=clean"
  fi
  log "building $name ($pkg) ..."
  t=$(now)
  (cd "$d" && go build -trimpath -ldflags="$ldflags" -o "$tmp/$name" "$pkg")
  log "built $name in $(since "$t")s"
done

rm -rf "$bin"
mv -T "$tmp" "$bin"
trap - EXIT
link
log "all built in $(since "$total")s: $bin"
echo "$bin"
