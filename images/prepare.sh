#!/bin/sh
# Run by every environment image's build file (images/*/Containerfile), as root, at build time:
# what the templates' startup `system` steps did at every start, done once, so that an environment
# needs no root when it starts.
#
#   prepare.sh USER HOME [PACKAGE...]
#
# Installs tmux, git, curl, ca-certificates, less, nano and procps (the terminal and the tools every
# template promises) plus PACKAGE..., with Debian's or Ubuntu's apt; then makes sure uid 1000 is
# USER (gid 1000, login shell bash) with HOME as its home, owned by it. A base image whose uid 1000
# already has another name is an error: the template would name the wrong user.
set -eu
user=$1
home=$2
shift 2

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends tmux git curl ca-certificates less nano procps "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*

existing=$(getent passwd 1000 | cut -d: -f1 || true)
if [ -z "$existing" ]; then
  getent group 1000 >/dev/null || groupadd --gid 1000 "$user"
  useradd --uid 1000 --gid 1000 --home-dir "$home" --no-create-home --shell /bin/bash "$user"
elif [ "$existing" != "$user" ]; then
  echo "prepare.sh: uid 1000 is '$existing' in the base image, the template expects '$user'" >&2
  exit 1
else
  usermod --home "$home" --shell /bin/bash "$user"
fi
mkdir -p "$home"
chown 1000:1000 "$home"
chmod 0755 "$home"
