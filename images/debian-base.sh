#!/usr/bin/env bash
# Makes a Debian 12 (bookworm) root file system from Debian's packages alone, with debootstrap, as
# a tar archive that `podman import` turns into an image: the stand-in for debian:bookworm on
# machines that reach Debian's mirror but no image registry (the test cluster's real node builds
# its environment images FROM it; see test/support/k8s/images.ts).
#
#   images/debian-base.sh OUT.tar
#
# Like the official debian:bookworm image it is debootstrap's `minbase` variant (essential
# packages and apt), with the bookworm-updates and security suites in its sources and no package
# lists or downloaded packages left. Needs root and debootstrap (Debian package). About 50 s.
# DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR choose the mirrors (default deb.debian.org).
set -euo pipefail

out=${1:?usage: debian-base.sh OUT.tar}
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

[ "$(id -u)" -eq 0 ] || { echo "debian-base: needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null 2>&1 || { echo "debian-base: debootstrap is not installed (Debian package debootstrap)" >&2; exit 1; }

target=$(mktemp -d "${TMPDIR:-/tmp}/debian-base.XXXXXX")
# debootstrap mounts /proc and /sys inside the target while it installs; a failure can leave them.
cleanup() {
  awk -v root="$target" '$5 == root || index($5, root "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r mountpoint; do umount -l "$mountpoint" 2>/dev/null || true; done
  rm -rf "$target"
}
trap cleanup EXIT

debootstrap --variant=minbase --merged-usr "$suite" "$target" "$mirror" >&2

cat > "$target/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF
# As in the official images: no package lists or cached packages in the image.
rm -rf "$target"/var/lib/apt/lists/* "$target"/var/cache/apt/*.bin "$target"/var/cache/apt/archives/*.deb "$target"/var/log/*.log
rm -f "$target/etc/hostname" "$target/etc/resolv.conf"
: > "$target/etc/machine-id" 2>/dev/null || true

mkdir -p "$(dirname "$out")"
tar --numeric-owner --xattrs -C "$target" -cf "$out.tmp" .
mv -f "$out.tmp" "$out"
echo "debian-base: $out ($(du -h "$out" | cut -f1))" >&2
