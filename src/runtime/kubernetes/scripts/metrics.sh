#!/bin/sh
# What the container can say about its own usage, as key=value lines; container-usage.ts decides
# which figures are the container's own. Never the node's: /proc/meminfo and /proc/stat are not read.
printf 'cgroupns=%s\n' "$(readlink /proc/self/ns/cgroup 2>/dev/null)"
# cgroup v2: memory.current exists only below the root, so at the mount point it is the container's.
[ -r /sys/fs/cgroup/memory.current ] && printf 'v2.memory=%s\n' "$(cat /sys/fs/cgroup/memory.current)"
[ -r /sys/fs/cgroup/memory.current ] && awk '$1 == "usage_usec" { print "v2.cpu_usec=" $2 }' /sys/fs/cgroup/cpu.stat 2>/dev/null
# cgroup v1: the hierarchies' mount roots (field 4 of mountinfo) say whose cgroup is mounted.
awk '/ - cgroup / { n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == "memory" || o[i] == "cpuacct") print "v1." o[i] "_root=" $4 }' /proc/self/mountinfo 2>/dev/null
[ -r /sys/fs/cgroup/memory/memory.usage_in_bytes ] && printf 'v1.memory=%s\n' "$(cat /sys/fs/cgroup/memory/memory.usage_in_bytes)"
[ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ] && printf 'v1.cpu_nsec=%s\n' "$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage)"
# The environment's own processes: those whose environment carries its id.
printf 'page_size=%s\n' "$(getconf PAGESIZE 2>/dev/null || echo 4096)"
stats=$(grep -lzx "DEVPOCKET_ENVIRONMENT_ID=${DEVPOCKET_ENVIRONMENT_ID:-none}" /proc/[0-9]*/environ 2>/dev/null | sed 's|/environ$|/stat|')
if [ -n "$stats" ]; then
  # shellcheck disable=SC2086
  cat $stats 2>/dev/null | awk '{ sub(/^.*\) /, ""); n += 1; ticks += $12 + $13; rss += $22 } END { printf "procs.count=%d\nprocs.ticks=%.0f\nprocs.rss_pages=%.0f\n", n, ticks, rss }'
fi
du -sk "$HOME" 2>/dev/null | awk '{ printf "disk=%.0f\n", $1 * 1024 }'
awk '/:/ && $1 != "lo:" { rx += $2; tx += $10 } END { printf "net_in=%.0f\nnet_out=%.0f\n", rx, tx }' /proc/net/dev 2>/dev/null
