#!/usr/bin/env bash
# Tears the test cluster's real node down (./real-node.ts), from the state file it keeps while
# starting: one `key value` line per thing it made, appended as it makes it, so that a node that
# failed half-way is torn down as far as it got. Run by RealNode.stop() and, if the test process died
# without stopping, by the cluster's watchdog (./processes.ts). Idempotent: running it again is harmless.
#
#   real-node-teardown.sh STATE_FILE
#
# Keys: dir (the node's directory: containerd's root and state, the kubelet's root, pod logs),
# socket (containerd's), crictl, kubelet-pid, containerd-pid, bridge, network (the CNI network's
# name), cgroup (the kubelet's cgroupRoot, under every hierarchy), sysctl (path and value before the
# start), created (a host directory that did not exist before: removed when empty), nat-table
# (`absent` when there was no IPv4 nat table before the start).
#
# In order: the kubelet (so nothing restarts pods), every pod sandbox through the CRI (containerd
# stops the containers and has the CNI plugins remove veths, addresses and NAT rules), containerd
# and any shim of it left, every process still in the node's cgroups and the cgroups themselves,
# every mount under the node's directory, NAT rules of the node's network (only when the CRI could
# not remove them), the bridge, the pods' log links, the kernel settings, the node's data.
set -uo pipefail
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

state=${1:?usage: real-node-teardown.sh STATE_FILE}
[ -f "$state" ] || exit 0

dir='' socket='' crictl='' kubelet_pid='' containerd_pid='' bridge='' network='' cgroup='' nat_table=''
sysctls=() created=()
while read -r key value; do
  case $key in
    dir) dir=$value ;;
    socket) socket=$value ;;
    crictl) crictl=$value ;;
    kubelet-pid) kubelet_pid=$value ;;
    containerd-pid) containerd_pid=$value ;;
    bridge) bridge=$value ;;
    network) network=$value ;;
    cgroup) cgroup=$value ;;
    nat-table) nat_table=$value ;;
    sysctl) sysctls+=("$value") ;;
    created) created+=("$value") ;;
  esac
done < "$state"

say() { echo "real-node-teardown: $*" >&2; }

alive() { # a process that exists and is not a zombie
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# SIGTERM to a process group, SIGKILL after $2 tenths of a second.
stop_group() {
  local pid=$1 tenths=$2 i=0
  [ -n "$pid" ] || return 0
  alive "$pid" || { kill -KILL -- "-$pid" 2>/dev/null; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null
  while alive "$pid" && [ $i -lt "$tenths" ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL -- "-$pid" 2>/dev/null
  i=0
  while alive "$pid" && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
}

# 1. The kubelet.
stop_group "$kubelet_pid" 50

# 2. Every pod sandbox, through the CRI: containers stopped, network torn down by the CNI plugins.
cri_done=false
if [ -n "$socket" ] && [ -S "$socket" ] && [ -x "$crictl" ] && [ -n "$containerd_pid" ] && alive "$containerd_pid"; then
  if timeout 60 "$crictl" --runtime-endpoint "unix://$socket" --image-endpoint "unix://$socket" --timeout 20s \
    rmp --all --force >/dev/null 2>&1; then
    cri_done=true
  else
    say "crictl could not remove every pod sandbox; cleaning up by hand"
  fi
fi

# 3. containerd, then any shim of it that outlived it (shims run in process groups of their own).
stop_group "$containerd_pid" 50
if [ -n "$socket" ]; then
  for cmdline in /proc/[0-9]*/cmdline; do
    if tr '\0' '\n' 2>/dev/null < "$cmdline" | grep -qxF -- "$socket"; then
      pid=${cmdline#/proc/}
      kill -KILL "${pid%/cmdline}" 2>/dev/null
    fi
  done
fi

# 4. Whatever still runs in the node's cgroups (containers whose shim was killed), then the cgroups.
cgroup_roots=()
if [ -n "$cgroup" ]; then
  while read -r mountpoint; do
    [ -d "$mountpoint/$cgroup" ] && cgroup_roots+=("$mountpoint/$cgroup")
  done < <(awk '{ split($0, halves, " - "); split(halves[2], fs, " "); if (fs[1] == "cgroup" || fs[1] == "cgroup2") print $5 }' /proc/self/mountinfo)
fi
for attempt in $(seq 1 50); do
  remaining=0
  for root in ${cgroup_roots[@]+"${cgroup_roots[@]}"}; do
    [ -d "$root" ] || continue
    find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null; done
    find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ -d "$root" ] && remaining=1
  done
  [ $remaining -eq 0 ] && break
  sleep 0.1
done
for root in ${cgroup_roots[@]+"${cgroup_roots[@]}"}; do [ -d "$root" ] && say "could not remove the cgroup $root"; done

# 5. Every mount under the node's directory (the kubelet's own root, pod volumes, containers'
#    root file systems, sandboxes' /dev/shm and network namespaces), deepest first.
if [ -n "$dir" ]; then
  for attempt in 1 2 3; do
    mounts=$(awk -v root="$dir" '$5 == root || index($5, root "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r -u)
    [ -n "$mounts" ] || break
    while read -r mountpoint; do
      umount "$mountpoint" 2>/dev/null || umount -l "$mountpoint" 2>/dev/null
    done <<< "$mounts"
  done
fi

# 6. NAT rules of the node's network, when the CNI plugins did not get to remove them (containerd
#    was gone); `iptables-save -t nat` is read first, as listing with iptables would make the table.
if [ "$cri_done" = false ] && [ -n "$network" ] && command -v iptables-save >/dev/null 2>&1; then
  if iptables-save -t nat 2>/dev/null | grep -qF "name: \\\"$network\\\""; then
    iptables -w -t nat -L POSTROUTING -n --line-numbers 2>/dev/null |
      awk -v net="name: \"$network\"" 'index($0, net) { print $1, $2 }' | sort -rn |
      while read -r number chain; do
        iptables -w -t nat -D POSTROUTING "$number" 2>/dev/null
        case $chain in CNI-*) iptables -w -t nat -F "$chain" 2>/dev/null; iptables -w -t nat -X "$chain" 2>/dev/null ;; esac
      done
  fi
fi

# The IPv4 nat table the bridge plugin's NAT rules made, when there was none before and it is empty
# now: with iptables on nf_tables an emptied table stays (deleted with nft, Debian package nftables).
if [ "$nat_table" = absent ] && command -v nft >/dev/null 2>&1 && nft list table ip nat >/dev/null 2>&1; then
  left=$(iptables-save -t nat 2>/dev/null | grep -e '^-A' -e '^:' | grep -v -e '^:PREROUTING ' -e '^:INPUT ' -e '^:OUTPUT ' -e '^:POSTROUTING ')
  [ -n "$left" ] || nft delete table ip nat 2>/dev/null || say "could not delete the emptied nat table"
fi

# 7. The bridge (the veths went with their network namespaces).
if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1; then ip link delete "$bridge" 2>/dev/null || say "could not delete the bridge $bridge"; fi

# 8. The kubelet's links to the pods' logs (/var/log/containers/*.log point into the node's directory).
if [ -n "$dir" ] && [ -d /var/log/containers ]; then
  for link in /var/log/containers/*.log; do
    [ -L "$link" ] || continue
    case $(readlink "$link") in "$dir"/*) rm -f "$link" ;; esac
  done
fi

# 9. The kernel settings, as they were before the start.
for entry in ${sysctls[@]+"${sysctls[@]}"}; do
  file=${entry%% *}
  value=${entry#* }
  case $file in /proc/sys/*) ;; *) continue ;; esac
  [ "$(cat "$file" 2>/dev/null)" = "$value" ] || echo "$value" > "$file" 2>/dev/null || say "could not restore $file to $value"
done

# 10. The node's data (containerd's root and state, the kubelet's root), once nothing is mounted there.
if [ -n "$dir" ] && [ -d "$dir" ]; then
  if awk -v root="$dir" '$5 == root || index($5, root "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    say "mounts are left under $dir: its data is kept"
  else
    rm -rf "$dir/containerd" "$dir/kubelet"
  fi
fi

# 11. Host directories the node made (/var/log/containers, /run/containerd, /var/lib/cni, and
#     /var/lib/kubelet, where the kubelet's device manager always puts its socket and checkpoint),
#     when nothing else is left in them.
for path in ${created[@]+"${created[@]}"}; do
  [ -d "$path" ] && find "$path" -depth \( -type s -o -name kubelet_internal_checkpoint -o -type d -empty \) -delete 2>/dev/null
done
exit 0
