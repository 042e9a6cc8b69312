#!/bin/sh
# DevPocket environment entrypoint: never exits on its own (a crash loop would hide the log).
set -u
umask 0007
CONF="${DEVPOCKET_CONFIG_DIR:-/etc/devpocket}"
STATE="$HOME/.devpocket"
LOG="$STATE/environment.log"
PROGRESS="$STATE/installation"
RUN="${TMUX_TMPDIR:-/tmp}"
SESSION="devpocket_${DEVPOCKET_ENVIRONMENT_ID}"
child=""

now() {
  stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ 2>/dev/null)
  case "$stamp" in *N*|"") date -u +%Y-%m-%dT%H:%M:%SZ ;; *) printf '%s\n' "$stamp" ;; esac
}
log() { printf '%s %s\n' "$(now)" "$*" >> "$LOG"; }
# The environment's user: root containers (templates with system steps) drop to it.
as_user() {
  if [ "$(id -u)" = 0 ] && [ "${DEVPOCKET_USER_UID:-0}" != 0 ]; then
    setpriv --reuid="$DEVPOCKET_USER_UID" --regid="$DEVPOCKET_USER_GID" --clear-groups -- "$@"
  else
    "$@"
  fi
}
# Runs a step file ($3) as root or the user ($4), its output logged with the prefix $1; sets rc.
run_step() {
  prefix=$1 file=$3 who=$4
  if command -v bash >/dev/null 2>&1; then interpreter=bash; else interpreter=sh; fi
  rcfile="$RUN/step.rc"
  rm -f "$rcfile"
  (
    cd "$HOME" 2>/dev/null || cd /
    if [ "$who" = user ]; then as_user "$interpreter" -l "$file" 2>&1 < /dev/null; else "$interpreter" -l "$file" 2>&1 < /dev/null; fi
    echo $? > "$rcfile"
  ) | while IFS= read -r line || [ -n "$line" ]; do log "$prefix $line"; done &
  child=$!
  wait "$child"
  child=""
  rc=$(cat "$rcfile" 2>/dev/null || echo 1)
}
start_tmux() {
  if ! command -v tmux >/dev/null 2>&1; then
    echo "tmux is not installed in the image" > "$RUN/devpocket-failure"
    log "[runtime] cannot start the terminal: tmux is not installed in the image"
    return
  fi
  as_user tmux -f "$CONF/tmux.conf" new-session -d -s "$SESSION" -c "$DEVPOCKET_WORKDIR" >> "$LOG" 2>&1 \
    || log "[runtime] tmux could not create the session $SESSION"
}
terminate() {
  trap - TERM INT HUP
  log "[runtime] stopping: the workload was asked to end"
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
  as_user tmux kill-server 2>/dev/null
  log "[runtime] stopped"
  exit 0
}
trap terminate TERM INT HUP

as_user mkdir -p "$STATE" "$DEVPOCKET_WORKDIR" 2>/dev/null || mkdir -p "$STATE"
as_user touch "$LOG" 2>/dev/null || touch "$LOG"
. "$CONF/counts"
log "[runtime] started: pod $(hostname 2>/dev/null || echo '?'), template $DEVPOCKET_TEMPLATE"

# System-level steps: every start (the container's file system is new each time), as root only.
i=1
while [ "$i" -le "$SYSTEM_STEPS" ]; do
  if [ "$(id -u)" != 0 ]; then
    log "[system] skipped $SYSTEM_STEPS system-level step(s): the container does not run as root"
    break
  fi
  log "[system $i/$SYSTEM_STEPS] running"
  run_step "[system $i/$SYSTEM_STEPS]" "$i" "$CONF/system-$i" root
  [ "$rc" = 0 ] || log "[system $i/$SYSTEM_STEPS] failed with exit code $rc"
  i=$((i + 1))
done

missing=""
while IFS= read -r command || [ -n "$command" ]; do
  [ -n "$command" ] || continue
  as_user sh -c 'command -v "$1"' sh "$command" >/dev/null 2>&1 || missing="$missing${missing:+, }$command"
done < "$CONF/required-commands"
[ -z "$missing" ] || log "[runtime] missing commands: $missing"

# User-level steps, continuing after the last finished one of this template version.
done_steps=0 failed="-"
if [ -f "$PROGRESS" ]; then
  read -r p_hash p_done p_total p_failed < "$PROGRESS" || true
  if [ "${p_hash:-}" = "$SPEC_HASH" ]; then done_steps=${p_done:-0} failed=${p_failed:--}; fi
fi
save_progress() {
  printf '%s %s %s %s\n' "$SPEC_HASH" "$done_steps" "$USER_STEPS" "$failed" > "$PROGRESS.tmp" && mv -f "$PROGRESS.tmp" "$PROGRESS"
}
save_progress

start_tmux
touch "$RUN/devpocket-ready"

if [ "$done_steps" -lt "$USER_STEPS" ]; then
  [ "$done_steps" -eq 0 ] || log "[startup] resuming after step $done_steps of $USER_STEPS"
  i=$((done_steps + 1))
  while [ "$i" -le "$USER_STEPS" ]; do
    first=$(head -n 1 "$CONF/user-$i")
    log "[startup $i/$USER_STEPS] \$ $first"
    run_step "[startup $i/$USER_STEPS]" "$i" "$CONF/user-$i" user
    if [ "$rc" != 0 ]; then
      log "[startup $i/$USER_STEPS] failed with exit code $rc"
      if [ "$failed" = "-" ]; then failed=$i; else failed="$failed,$i"; fi
    fi
    done_steps=$i
    save_progress
    i=$((i + 1))
  done
  if [ "$failed" = "-" ]; then log "[startup] finished: $USER_STEPS step(s) succeeded"; else log "[startup] finished: step(s) $failed of $USER_STEPS failed"; fi
fi

# Keep the container alive; bring the DevPocket session back if its last shell was closed.
while :; do
  sleep 5 &
  child=$!
  wait "$child"
  child=""
  if [ ! -f "$RUN/devpocket-failure" ] && ! as_user tmux has-session -t "=$SESSION" 2>/dev/null; then start_tmux; fi
done
