# Source this file: podman as it works on these machines (and most CI runners
# without a container network or systemd): runc instead of crun (crun refuses
# a mixed cgroup setup), the host's network (no CNI/netavark set-up needed),
# and open-file and process limits within the machine's hard limits (podman's
# defaults ask for more than an unprivileged runner may have).
if ! command -v podman >/dev/null 2>&1; then
  echo "podman is not installed: apt-get install podman runc mmdebstrap (Debian/Ubuntu, as root)" >&2
  return 1 2>/dev/null || exit 1
fi
PODMAN_GLOBAL_FLAGS=(--runtime runc)
PODMAN_LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
PODMAN_BUILD_FLAGS=(--network host "${PODMAN_LIMITS[@]}")
PODMAN_RUN_FLAGS=(--network host "${PODMAN_LIMITS[@]}")
podman_cmd() { podman "${PODMAN_GLOBAL_FLAGS[@]}" "$@"; }
