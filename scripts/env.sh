# shellcheck shell=bash
# Source this file: it sets the environment every script and test here expects.
# Nix: flakes on, no sandbox (the machines here cannot create one), no binary
# caches (they cannot be reached), and aarch64 builds allowed (run by qemu-user).
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export NIX_CONFIG='experimental-features = nix-command flakes
sandbox = false
substituters =
extra-platforms = aarch64-linux
build-users-group =
warn-dirty = false'
export CONTAINERS_CONF="$repo_root/scripts/containers.conf"
# The stand-in inputs that let the flake build without network.
export STANDIN_OVERRIDES="--override-input nixpkgs path:$repo_root/testdata/standin/nixpkgs --override-input llm-agents path:$repo_root/testdata/standin/llm-agents --override-input llm-agents/nixpkgs path:$repo_root/testdata/standin/nixpkgs"
