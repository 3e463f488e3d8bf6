#!/usr/bin/env bash
# PID 1 of the cluster's node: run by test/cluster/node.ts as
#   unshare --pid --fork --kill-child --mount-proc --net --mount --propagation private -- node-init.sh STATE PAUSE
# in namespaces of its own, so that nothing of the cluster reaches the host:
#   - network: its own; the node's address on a bridge `node0` (the kubelet rejects
#     a loopback node IP), no route anywhere else, forwarding only inside the
#     cluster's ranges. iptables/nftables rules and net.* sysctls live and die here.
#   - mount: private. The paths the kubelet and containerd write whatever their
#     flags say (/var/lib/kubelet/pki and device-plugins, /var/log/pods and
#     containers, /run/containerd, /var/lib/cni, /run/netns) are STATE folders
#     bind-mounted over /var/lib, /var/log and /run; the kernel/vm sysctls the
#     kubelet sets (kernel.panic, kernel.panic_on_oops, vm.overcommit_memory,
#     vm.panic_on_oom, kernel.keys.root_max*) are files bind-mounted over their
#     /proc/sys entries, so its writes land in STATE, not in the host's kernel.
#   - PID: every component is started in it (nsenter), so when this process dies
#     the kernel kills all of them, containers included.
# It then becomes the pause program (reaps orphans, exits on SIGTERM).
set -euo pipefail
state=${1:?state dir}
pause=${2:?pause binary}

# Mounts: ours only (private first, by unshare), then shared among our own mounts
# so the kubelet's volume mounts reach containerd's containers.
mount --make-rshared /
for d in var-lib var-log run; do mkdir -p "$state/$d"; done
mount --bind "$state/var-lib" /var/lib
mount --bind "$state/var-log" /var/log
mount --bind "$state/run" /run
mkdir -p "$state/sysctl"
for key in kernel/panic kernel/panic_on_oops vm/overcommit_memory vm/panic_on_oom kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
  [[ -e /proc/sys/$key ]] || continue
  file="$state/sysctl/${key//\//.}"
  cat "/proc/sys/$key" >"$file"
  mount --bind "$file" "/proc/sys/$key"
done

# Network: 10.222.0.1 the node, 10.222.1.0/24 pods (bridge cni0), 10.222.2.0/24 Services.
ip link set lo up
ip link add node0 type bridge
ip addr add 10.222.0.1/32 dev node0
ip link set node0 up
echo 1 >/proc/sys/net/ipv4/ip_forward
echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
# Pods get no route out: nothing but the cluster's ranges is routable here, and
# forwarded traffic to or from anything else is dropped.
iptables -w -N GREETER-CLUSTER-FWD
iptables -w -A GREETER-CLUSTER-FWD -s 10.222.0.0/16 -d 10.222.0.0/16 -j RETURN
iptables -w -A GREETER-CLUSTER-FWD -j DROP
iptables -w -I FORWARD 1 -j GREETER-CLUSTER-FWD

echo ready >"$state/node.ready"
exec "$pause"
