# shellcheck shell=bash
# Source this file: it sets the environment every script and test here expects.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Nix: Debian trixie's 2.26 (and its skopeo) from the root setup-host.sh
# makes, ahead of bookworm's 2.8 on PATH.
export PATH="/var/lib/agent-images/bin:$PATH"
# Flakes on, no binary caches (they cannot be reached), aarch64 builds
# allowed (run by qemu-user), and builds in Nix's sandbox. The stand-in
# inputs build with host programs (see testdata/standin/nixpkgs/README.md),
# which the sandbox is given read-only: /usr with its loader, bash as the
# stand-in stdenv's builder, the static busybox, the CA bundle, and the
# Debian alternatives some of /usr/bin points through. max-jobs = auto is
# what cachix/install-nix-action writes on GitHub's runners: as many builds
# at once as there are cores (Nix's own default is one).
export NIX_CONFIG='experimental-features = nix-command flakes
max-jobs = auto
sandbox = true
extra-sandbox-paths = /usr /lib /lib64 /bin/bash=/usr/bin/bash /opt/agent-images-standin /etc/ssl/certs/ca-certificates.crt /etc/alternatives
substituters =
extra-platforms = aarch64-linux
build-users-group =
warn-dirty = false'
# The oldest Nix release supports, for the tests that run on every Nix:
# bookworm's 2.8, which cannot make a sandbox on these machines.
export AGENT_IMAGES_OLD_NIX=/usr/bin/nix
export AGENT_IMAGES_OLD_NIX_CONFIG="${NIX_CONFIG/sandbox = true/sandbox = false}"
export CONTAINERS_CONF="$repo_root/scripts/containers.conf"
# The stand-in inputs that let the flake build without network.
export STANDIN_OVERRIDES="--override-input nixpkgs path:$repo_root/testdata/standin/nixpkgs --override-input llm-agents path:$repo_root/testdata/standin/llm-agents --override-input llm-agents/nixpkgs path:$repo_root/testdata/standin/nixpkgs"
