#!/bin/sh
exec tail -n 0 -F "$HOME/.devpocket/environment.log" 2>/dev/null
