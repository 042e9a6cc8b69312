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
