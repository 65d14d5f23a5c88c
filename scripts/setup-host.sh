#!/usr/bin/env bash
# Installs and prepares what the tests and the local release need on a fresh
# Debian machine: Nix, Podman with runc, qemu-user for arm64 containers, the
# distribution registry, and the host binaries the stand-in nixpkgs wraps.
# Safe to run again: every step checks before it acts.
set -euo pipefail

need_pkgs=(nix-bin podman runc qemu-user-static binfmt-support docker-registry
  fakeroot busybox-static skopeo python3 ca-certificates git uidmap iptables
  shellcheck curl openssh-client)
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

# A current Nix: bookworm's nix-bin is 2.8, older than what GitHub's runners
# and users have, so the tests run Debian trixie's (2.26), with trixie's
# skopeo, from a trixie root made with debootstrap from Debian's own mirror.
# Bookworm's 2.8 stays, as the oldest Nix release supports. Nix fetches git
# inputs with the git program, so trixie's root has its own.
trixie=/var/lib/agent-images/trixie
trixie_pkgs="nix-bin git bash-static fakeroot zstd sqlite3 python3 gzip tar skopeo ca-certificates"
if [ "$(cat "$trixie/.agent-images-packages" 2>/dev/null)" != "$trixie_pkgs" ]; then
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  if [ ! -x "$trixie/usr/bin/apt-get" ]; then
    echo "setup: making a Debian trixie root in $trixie" >&2
    rm -rf "$trixie.tmp"
    debootstrap --variant=minbase trixie "$trixie.tmp" http://deb.debian.org/debian >/dev/null
    rm -rf "$trixie"
    mv "$trixie.tmp" "$trixie"
  fi
  echo "setup: installing $trixie_pkgs in $trixie" >&2
  cp /etc/resolv.conf "$trixie/etc/resolv.conf"
  # shellcheck disable=SC2016,SC2086 # the inner script's own variables; a list of packages
  unshare --mount --propagation private /bin/sh -c '
    set -e
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    chroot "$root" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  ' sh "$trixie" $trixie_pkgs
  echo "$trixie_pkgs" >"$trixie/.agent-images-packages"
fi
# The trixie programs run with this machine's files: a private mount
# namespace lays trixie's /usr over the host's (keeping the host's
# /usr/local), so paths, the store and the working directory are the same.
mkdir -p /var/lib/agent-images/bin
cat >/var/lib/agent-images/bin/trixie-run <<'RUN'
#!/bin/sh
# Runs /usr/bin/$(basename $0) of the Debian trixie root on this machine's files.
if [ "$(id -u)" != 0 ]; then
  echo "$(basename "$0"): the test bed's Debian trixie programs run as root (they need a mount namespace); run as root, or take $(basename "$0") from elsewhere on PATH" >&2
  exit 126
fi
exec unshare --mount --propagation private /bin/sh -c '
  set -e
  root=/var/lib/agent-images/trixie; prog=$1; shift
  mount --rbind /usr/local "$root/usr/local"
  mount --rbind "$root/usr" /usr
  mount --bind "$root/etc/ld.so.cache" /etc/ld.so.cache
  exec "/usr/bin/$prog" "$@"' sh "$(basename "$0")" "$@"
RUN
chmod 0755 /var/lib/agent-images/bin/trixie-run
for prog in nix nix-store skopeo; do
  ln -sf trixie-run "/var/lib/agent-images/bin/$prog"
done
/var/lib/agent-images/bin/nix --version | grep -q '^nix (Nix) 2\.2[6-9]' || {
  echo "setup: $trixie has no Nix 2.26 or newer" >&2
  exit 1
}
echo "setup: ready" >&2
