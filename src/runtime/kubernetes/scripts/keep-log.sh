#!/bin/sh
# The log a stop keeps (stopped-log.ts): its newest $1 lines, then the line $2 (the backlog is out:
# the runtime may stop the pod now), then every line written after them, until the pod ends. Gap-free:
# the follow starts at the byte where the backlog ended (a line still being written comes with it).
log="$HOME/.devpocket/environment.log"
size=$(wc -c 2>/dev/null < "$log") || size=0
if [ "$size" -gt 0 ] && [ "$(tail -c +"$size" "$log" | head -c 1 | od -An -tx1 | tr -d ' \n')" != 0a ]; then
  size=$((size - $(head -c "$size" "$log" | tail -n 1 | wc -c)))
fi
head -c "$size" "$log" 2>/dev/null | tail -n "${1:-0}"
printf '%s\n' "$2"
exec tail -c +"$((size + 1))" -F "$log" 2>/dev/null
