#!/usr/bin/env bash
# Builds the DevPocket Server image from this working tree without an image registry: for machines
# that reach Debian's mirror and npm's registry but no image registry (the test cluster's real node;
# see docs/deployment.md, "Building the image"). With a registry, build the Dockerfile instead.
#
#   images/server/build.sh [--engine ENGINE] [--base IMAGE] [--tag NAME] [-- BUILD-OPTION...]
#
#   --engine      podman (default when installed), docker or buildah
#   --base        FROM this Debian bookworm image (default debian:bookworm-slim; the test cluster
#                 passes its own, made with images/debian-base.sh)
#   --tag         the image's name (default devpocket/devpocket-server:<package.json version>)
#   BUILD-OPTION  passed to the engine's build command as is (e.g. --network=host)
#
# Needs `npm ci` and `npm run build` done: it stages, in a temporary directory, the Node 24 binary
# of the project's own `node` npm package (node_modules/node: nothing is downloaded from nodejs.org),
# dist/, templates/, package.json and the production node_modules (a hard-link copy of node_modules
# pruned with `npm prune --omit=dev`: the native modules, argon2 and node-pty, were built by
# `npm ci` on this Debian 12 host, for the same glibc as the image's). Prints the image's name on
# stdout; the engine's output goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
engine=
base=
tag=
build_options=()
while [ $# -gt 0 ]; do
  case $1 in
    --engine) engine=${2:?--engine needs a value}; shift 2 ;;
    --base) base=${2:?--base needs a value}; shift 2 ;;
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --) shift; build_options=("$@"); break ;;
    *) echo "server/build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
# podman, docker and buildah all have `build` with the options below.
engine=${engine:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
command -v "$engine" >/dev/null 2>&1 || { echo "server/build.sh: $engine is not installed" >&2; exit 1; }

node="$root/node_modules/node/bin/node"
[ -x "$node" ] || { echo "server/build.sh: $node is missing: run npm ci" >&2; exit 1; }
case $("$node" --version) in
  v24.*) ;;
  *) echo "server/build.sh: $node is not Node 24 ($("$node" --version))" >&2; exit 1 ;;
esac
[ -f "$root/dist/main.js" ] || { echo "server/build.sh: dist/main.js is missing: run npm run build" >&2; exit 1; }
version=$("$node" -p 'require(process.argv[1]).version' "$root/package.json")
tag=${tag:-devpocket/devpocket-server:$version}

context=$(mktemp -d "${TMPDIR:-/tmp}/devpocket-server-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp "$node" "$context/node"
app="$context/app"
mkdir -p "$app"
cp -a "$root/dist" "$root/templates" "$app/"
cp "$root/package.json" "$root/package-lock.json" "$app/"
# Hard links (instant, no space) when on the same file system; npm prune only unlinks, except for
# node_modules/.package-lock.json, which it rewrites: that one is a copy of its own.
cp -al "$root/node_modules" "$app/node_modules" 2>/dev/null || { rm -rf "$app/node_modules"; cp -a "$root/node_modules" "$app/node_modules"; }
rm -f "$app/node_modules/.package-lock.json"
[ ! -f "$root/node_modules/.package-lock.json" ] || cp "$root/node_modules/.package-lock.json" "$app/node_modules/.package-lock.json"
(cd "$app" && PATH="$(dirname "$node"):$PATH" npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -f "$app/package-lock.json"
# Native modules ship prebuilt binaries for every platform (node-pty's Windows ones alone are 58 MB):
# the image keeps Linux x64's only.
find "$app/node_modules" -mindepth 3 -type d -path '*/prebuilds/*' -prune ! -name 'linux-x64*' -exec rm -rf {} +

args=(--file "$root/images/server/Containerfile" --tag "$tag" --label "io.devpocket.version=$version")
[ -z "$base" ] || args+=(--build-arg "BASE=$base")
echo "server/build.sh: $tag FROM ${base:-debian:bookworm-slim} ($(du -sh "$context" | cut -f1) staged)" >&2
"$engine" build "${args[@]}" ${build_options[@]+"${build_options[@]}"} "$context" >&2
echo "$tag"
