#!/bin/sh
if [ -r /sys/fs/cgroup/memory.current ]; then
  printf 'memory=%s\n' "$(cat /sys/fs/cgroup/memory.current)"
  awk '$1 == "usage_usec" { print "cpu_usec=" $2 }' /sys/fs/cgroup/cpu.stat 2>/dev/null
elif [ -r /sys/fs/cgroup/memory/memory.usage_in_bytes ]; then
  printf 'memory=%s\n' "$(cat /sys/fs/cgroup/memory/memory.usage_in_bytes)"
  [ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ] && printf 'cpu_usec=%s\n' "$(( $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage) / 1000 ))"
else
  awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { if (t) print "memory=" (t - a) * 1024 }' /proc/meminfo
fi
du -sk "$HOME" 2>/dev/null | awk '{ print "disk=" $1 * 1024 }'
awk '/:/ && $1 != "lo:" { rx += $2; tx += $10 } END { print "net_in=" rx + 0; print "net_out=" tx + 0 }' /proc/net/dev 2>/dev/null
