#!/usr/bin/env bash
# Installs and prepares what the tests and the local release need on a fresh
# Debian machine: Nix, Podman with runc, qemu-user for arm64 containers, the
# distribution registry, and the host binaries the stand-in nixpkgs wraps.
# Safe to run again: every step checks before it acts.
set -euo pipefail

need_pkgs=(nix-bin podman runc qemu-user-static binfmt-support docker-registry
  fakeroot busybox-static skopeo python3 ca-certificates git uidmap iptables
  shellcheck curl libnss-wrapper openssh-client)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Docker is optional: tests use it when its engine starts here.
if [ "${AGENT_IMAGES_DOCKER:-1}" = 1 ] && ! command -v dockerd >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1 ||
    echo "setup: docker.io could not be installed; docker tests will be skipped" >&2
fi

# Static busybox for both systems: the stand-in nixpkgs builds its small
# packages from these (see testdata/standin/nixpkgs/README.md).
standin=/opt/agent-images-standin
mkdir -p "$standin/x86_64-linux" "$standin/aarch64-linux"
if [ ! -x "$standin/x86_64-linux/busybox" ]; then
  cp /bin/busybox "$standin/x86_64-linux/busybox"
fi
if [ ! -x "$standin/aarch64-linux/busybox" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; apt-get update -qq; }
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq busybox-static:arm64 >/dev/null)
  dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/x"
  cp "$tmp/x/bin/busybox" "$standin/aarch64-linux/busybox"
  rm -rf "$tmp"
fi

# arm64 containers run under qemu-user once its binfmt entry is registered.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
fi

# Nix as root without a daemon: make sure the store exists.
mkdir -p /nix/store /nix/var/nix
echo "setup: ready" >&2
