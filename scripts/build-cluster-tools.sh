#!/usr/bin/env bash
# Builds the single-node cluster's binaries (npm run test:cluster) from the Go
# modules pinned in test/cluster/tools/*/ — one small module per upstream
# project, each naming its main packages with `tool` directives in its go.mod:
#   kubernetes        kubelet, kube-controller-manager, kube-scheduler, kube-proxy
#                     (the same k8s.io/kubernetes pin as test/e2e/tools/kube-apiserver,
#                     checked below, with the same version ldflags)
#   containerd        containerd, containerd-shim-runc-v2, ctr (CGO_ENABLED=0, no btrfs/devmapper/zfs)
#   coredns           coredns (cluster DNS)
#   knative-eventing  controller, webhook, mtping, apiserver_receive_adapter (the release
#                     test/e2e/tools/apiserver-receive-adapter pins, checked below)
#   pause             the pod sandbox's pause program (this repo's main.go, no dependencies)
# runc and the CNI plugins come from Debian (runc, containernetworking-plugins).
#
# Output: ${GREETER_TOOLS_DIR:-$HOME/.cache/member-greeter/tools}/cluster-<hash>/<module>/<binary>,
# <hash> being the sha256 of test/cluster/tools/* (go.mod, go.sum, *.go), the Go
# version and this script, so a pin or recipe change rebuilds and nothing else does.
# The repo's .tools/cluster-bin (git-ignored) is pointed at it.
#
# stdout: only that folder's path, as the last line. stderr: progress and how
# long each build took. GREETER_TOOLS_REBUILD=1 forces a rebuild.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"

log() { echo "build-cluster-tools: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

tools="$repo/test/cluster/tools"
mods=(kubernetes containerd coredns knative-eventing pause)
for m in "${mods[@]}"; do [[ -f "$tools/$m/go.mod" ]] || { log "missing $tools/$m/go.mod"; exit 1; }; done

# The cluster runs the e2e's kube-apiserver and etcd: its other parts must be of the same release.
pin() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$2"; }
for pair in "k8s.io/kubernetes kubernetes kube-apiserver" "knative.dev/eventing knative-eventing apiserver-receive-adapter"; do
  read -r mod ours theirs <<<"$pair"
  a=$(pin "$mod" "$tools/$ours/go.mod") b=$(pin "$mod" "$repo/test/e2e/tools/$theirs/go.mod")
  [[ -n "$a" && "$a" == "$b" ]] || { log "$mod: test/cluster/tools/$ours pins '$a', test/e2e/tools/$theirs pins '$b'"; exit 1; }
done

hash=$(
  {
    go env GOVERSION GOOS GOARCH
    cat "${BASH_SOURCE[0]}"
    for m in "${mods[@]}"; do
      echo "== $m"
      cat "$tools/$m"/go.mod "$tools/$m"/go.sum "$tools/$m"/*.go 2>/dev/null || true
    done
  } | sha256sum | cut -d' ' -f1
)

cache=${GREETER_TOOLS_DIR:-${HOME:?set HOME or GREETER_TOOLS_DIR}/.cache/member-greeter/tools}
bin="$cache/cluster-$hash"

# Main packages of a module: its `tool` directives (one-line or block), else the module itself.
tools_of() {
  awk '$1 == "tool" && $2 != "(" { print $2 } $1 == "tool" && $2 == "(" { b = 1; next } b && $1 == ")" { b = 0 } b && NF { print $1 }' "$1/go.mod"
}

expected() {
  local m p
  for m in "${mods[@]}"; do
    p=$(tools_of "$tools/$m")
    if [[ -z "$p" ]]; then echo "$m/$m"; else for x in $p; do echo "$m/${x##*/}"; done; fi
  done
}

complete() {
  local f
  [[ -d "$bin" ]] || return 1
  for f in $(expected); do [[ -x "$bin/$f" ]] || return 1; done
}

link() {
  mkdir -p "$repo/.tools"
  ln -sfn "$bin" "$repo/.tools/cluster-bin"
}

if [[ "${GREETER_TOOLS_REBUILD:-}" != 1 ]] && complete; then
  link
  log "up to date: $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock-cluster"
flock 9
if [[ "${GREETER_TOOLS_REBUILD:-}" != 1 ]] && complete; then
  link
  log "built by another run meanwhile: $bin"
  echo "$bin"
  exit 0
fi

tmp=$(mktemp -d "$cache/.build-cluster-$hash.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

total=$(now)
for m in "${mods[@]}"; do
  d="$tools/$m"
  mkdir -p "$tmp/$m"
  pkgs=$(tools_of "$d")
  flags=(-trimpath)
  ldflags="-s -w"
  case "$m" in
    kubernetes)
      # What Kubernetes' own build stamps, else the node reports v0.0.0-master.
      kv=$(cd "$d" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
      minor=${kv#v*.}; minor=${minor%%.*}
      cb=k8s.io/component-base/version
      ldflags+=" -X $cb.gitVersion=$kv -X $cb.gitMajor=1 -X $cb.gitMinor=$minor -X $cb.gitTreeState=clean"
      ;;
    containerd)
      # containerd's own static build: no btrfs, devmapper or zfs snapshotters (they need cgo).
      flags+=(-tags "no_btrfs no_devmapper no_zfs")
      cv=$(cd "$d" && go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
      ldflags+=" -X github.com/containerd/containerd/v2/version.Version=$cv"
      ;;
  esac
  log "building $m (${pkgs:-.}) ..."
  t=$(now)
  if [[ -z "$pkgs" ]]; then
    (cd "$d" && go build "${flags[@]}" -ldflags="$ldflags" -o "$tmp/$m/$m" .)
  else
    # shellcheck disable=SC2086 # one word per package
    (cd "$d" && go build "${flags[@]}" -ldflags="$ldflags" -o "$tmp/$m/" $pkgs)
  fi
  log "built $m in $(since "$t")s"
done

rm -rf "$bin"
mv -T "$tmp" "$bin"
trap - EXIT
link
log "all built in $(since "$total")s: $bin"
echo "$bin"
