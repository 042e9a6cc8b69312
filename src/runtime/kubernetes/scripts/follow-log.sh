#!/bin/sh
# $1: how many lines already in the log come first (a backlog), then every new line.
exec tail -n "${1:-0}" -F "$HOME/.devpocket/environment.log" 2>/dev/null
