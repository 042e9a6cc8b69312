#!/usr/bin/env bash
# Builds every binary of the test cluster (test/support/k8s/testbed.ts) into OUT_DIR, from the Go
# module proxy, pinned:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet  v1.36.3  (./kubernetes, our own module)
#   kine   v0.17.5  (etcd API on SQLite: the API server's storage; pure Go, CGO off)
#   kwok   v0.8.0   (fake nodes and kubelets)
#   crictl v1.34.0  (the real node's teardown: stops and removes every pod sandbox through the CRI)
# and copies kwok's CRDs and Stages from its module source into OUT_DIR/kwok-manifests/.
#
#   tools/k8s-testbed/build.sh OUT_DIR
#
# test/support/k8s/build.ts runs this into ~/.cache/devpocket/k8s-testbed/<hash of this directory>/
# and only when that directory does not exist yet: changing anything here rebuilds.
# A cold build (empty Go caches) takes about 6 minutes on two cores.
set -euo pipefail

KUBERNETES_VERSION=v1.36.3
KINE_VERSION=v0.17.5
KWOK_VERSION=v0.8.0
# v1.35.0 is refused by the module proxy.
CRICTL_VERSION=v1.34.0

out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
go=${GO:-go}

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false"

echo "k8s-testbed: kine ${KINE_VERSION}" >&2
GOBIN="$out" "$go" install -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=${KINE_VERSION}" \
  "github.com/k3s-io/kine@${KINE_VERSION}"

echo "k8s-testbed: kwok ${KWOK_VERSION} (patched: see kwok-exec.patch)" >&2
# kwok's local exec differs from a kubelet in ways that matter here, which kwok-exec.patch mends:
# it never closes the program's stdin when the client closes it (so `cat` never sees end-of-file),
# a TTY is not the program's controlling terminal (so resizes send no SIGWINCH: tmux never learns
# its new size), and it runs an exec as a uid only if this host's user database knows it. The module's source is copied from the module cache,
# patched, and built with the module's own go.mod and go.sum.
kwok_src=$("$go" mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
kwok_build=$(mktemp -d)
trap 'chmod -R u+w "$kwok_build" 2>/dev/null; rm -rf "$kwok_build"' EXIT
cp -R "$kwok_src/." "$kwok_build/"
chmod -R u+w "$kwok_build"
patch -s -d "$kwok_build" -p1 < "$here/kwok-exec.patch"
(cd "$kwok_build" && GOFLAGS="$GOFLAGS -mod=mod" "$go" build -ldflags "-s -w" -o "$out/kwok" ./cmd/kwok)

echo "k8s-testbed: crictl ${CRICTL_VERSION}" >&2
GOBIN="$out" "$go" install -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}" \
  "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"

echo "k8s-testbed: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet ${KUBERNETES_VERSION}" >&2
minor=${KUBERNETES_VERSION#v*.}
minor=${minor%%.*}
version_pkg=k8s.io/component-base/version
ldflags="-s -w -X ${version_pkg}.gitVersion=${KUBERNETES_VERSION} -X ${version_pkg}.gitMajor=1 -X ${version_pkg}.gitMinor=${minor}"
ldflags+=" -X ${version_pkg}.gitTreeState=clean -X ${version_pkg}.buildDate=1970-01-01T00:00:00Z"
(cd "$here/kubernetes" && "$go" build -ldflags "$ldflags" -o "$out/" ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubelet)

# kwok's CRDs and Stages, from the same module version as the binary.
[ -d "$kwok_src/kustomize" ] || { echo "k8s-testbed: no kustomize/ in sigs.k8s.io/kwok@${KWOK_VERSION} ($kwok_src)" >&2; exit 1; }
for dir in crd/bases stage/node/fast stage/node/heartbeat-with-lease stage/pod/general stage/volume/fast; do
  mkdir -p "$out/kwok-manifests/$dir"
  cp "$kwok_src/kustomize/$dir"/*.yaml "$out/kwok-manifests/$dir/"
  rm -f "$out/kwok-manifests/$dir/kustomization.yaml"
done
chmod -R u+w "$out/kwok-manifests"

"$out/kube-apiserver" --version >&2
"$out/kubelet" --version >&2
