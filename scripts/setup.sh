#!/usr/bin/env bash
# Prepares this machine for the test suite: the Debian packages the tests drive for real, the npm
# dependencies, the embedded database binary, the Kubernetes test cluster (its binaries, and the
# images of its real node, built here from Debian's packages: the environments', the server's and
# Redis's) and the schema fuzzer (schemathesis, in a virtualenv). Safe to run again: it installs
# and builds only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A packages=(
  [tmux]=tmux
  [chromium]=chromium
  [pg_ctl]=postgresql
  # The Redis the replicas share (docs/scaling.md): the test setup starts one (test/support/global-setup.ts).
  [redis-server]=redis-server
  [bwrap]=bubblewrap
  [openssl]=openssl
  [patch]=patch
  # The test cluster's real node (test/support/k8s/real-node.ts) and its images (images/, test/support/k8s/images.ts).
  [containerd]=containerd
  [runc]=runc
  [iptables]=iptables
  [nft]=nftables
  [debootstrap]=debootstrap
  [podman]=podman
  [buildah]=buildah
  [catatonit]=catatonit
)
# Also where root's commands are, for a user whose PATH lacks the sbin directories.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
missing=()
for command in "${!packages[@]}"; do
  have "$command" || missing+=("${packages[$command]}")
done
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
# schemathesis is installed below into a virtualenv, which needs python3 with its venv module.
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
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
# The images the server itself runs from on the real node (test/kubernetes/in-cluster.e2e-spec.ts):
# Redis from Debian's package, and the server from dist/ (built here; `npm test` builds it again
# the same, so the suite finds the image cached). Root only, like the real node's images.
if [ "$(id -u)" -eq 0 ]; then
  npm run --silent build
  npx --no-install tsx test/support/k8s/server-image-cli.ts >/dev/null
fi

# The OpenAPI fuzzer of test/foundation/openapi-fuzz.e2e-spec.ts, pinned, in a virtualenv of its own.
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_VENV="$HOME/.cache/devpocket/schemathesis"
if ! "$SCHEMATHESIS_VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
