#!/bin/sh
CONF="${DEVPOCKET_CONFIG_DIR:-/etc/devpocket}"; RUN="${TMUX_TMPDIR:-/tmp}"
[ -f "$RUN/devpocket-failure" ] && printf 'failure=%s\n' "$(head -n 1 "$RUN/devpocket-failure")"
[ -f "$RUN/devpocket-ready" ] && echo ready=1
[ -f "$HOME/.devpocket/installation" ] && printf 'installation=%s\n' "$(head -n 1 "$HOME/.devpocket/installation")"
missing=""
while IFS= read -r command || [ -n "$command" ]; do
  [ -n "$command" ] || continue
  command -v "$command" >/dev/null 2>&1 || missing="$missing $command"
done < "$CONF/required-commands"
printf 'missing=%s\n' "$missing"
# Processes the kernel killed for memory in this container (out-of-memory.ts decides whose cgroup it is).
printf 'cgroupns=%s\n' "$(readlink /proc/self/ns/cgroup 2>/dev/null)"
[ -r /sys/fs/cgroup/memory.events ] && awk '$1 == "oom_kill" { print "v2.oom_kill=" $2 }' /sys/fs/cgroup/memory.events
awk '/ - cgroup / { n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == "memory") print "v1.memory_root=" $4 }' /proc/self/mountinfo 2>/dev/null
[ -r /sys/fs/cgroup/memory/memory.oom_control ] && awk '$1 == "oom_kill" { print "v1.oom_kill=" $2 }' /sys/fs/cgroup/memory/memory.oom_control
true
