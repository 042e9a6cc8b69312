#!/usr/bin/env bash
# Prepares this machine for the test suite: the Debian packages the tests drive for real, the npm
# dependencies, and the embedded database binary. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A packages=(
  [tmux]=tmux
  [chromium]=chromium
  [pg_ctl]=postgresql
  [bwrap]=bubblewrap
  [openssl]=openssl
  [patch]=patch
)
missing=()
for command in "${!packages[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${packages[$command]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them yourself)" >&2
    exit 1
  fi
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || {
  echo "setup: Go (>= 1.26) is required to build the embedded database (tools/devdb) and the Kubernetes test cluster (tools/k8s-testbed)" >&2
  exit 1
}

npm ci --no-audit --no-fund
npm run --silent db -- --build-only
npm run --silent k8s:testbed -- --build-only
