#!/usr/bin/env bash
# The project's tests, from a fresh Debian machine: installs and prepares
# what they need (scripts/setup-host.sh), then runs the Go checks and every
# test against real Nix (Debian trixie's 2.26, and bookworm's 2.8 as the
# oldest supported), Podman (x86_64 and aarch64 under qemu), Debian's
# docker-registry and, where it starts, Docker.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH)/bin"
# Missing tools fail the tests instead of skipping them.
export AGENT_IMAGES_REQUIRE_E2E=1

echo "== gofmt, go vet, staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./... ./testbed/...
if ! command -v staticcheck >/dev/null; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
staticcheck ./... ./testbed/...

echo "== nix: flake check, every image for both systems, reproducibility"
# The current Nix builds everything, sandboxed; the oldest supported one
# runs the tests that take every Nix (AGENT_IMAGES_OLD_NIX).
echo "nix: $(nix --version), oldest: $("$AGENT_IMAGES_OLD_NIX" --version)"
nix config show sandbox | grep -qx true || { echo "the test bed's Nix builds without its sandbox" >&2; exit 1; }
# shellcheck disable=SC2086 # STANDIN_OVERRIDES is a list of arguments
nix flake check $STANDIN_OVERRIDES
# The oldest Nix evaluates the same flake to the same checks.
# shellcheck disable=SC2086
NIX_CONFIG=$AGENT_IMAGES_OLD_NIX_CONFIG "$AGENT_IMAGES_OLD_NIX" flake check $STANDIN_OVERRIDES
attrs=$(nix eval --json .#packages $STANDIN_OVERRIDES --apply \
  'ps: builtins.concatLists (builtins.attrValues (builtins.mapAttrs (s: imgs: map (a: "packages.${s}.${a}") (builtins.attrNames imgs)) ps))' |
  python3 -c 'import json,sys; print(" ".join(".#"+a for a in json.load(sys.stdin)))')
count=$(wc -w <<<"$attrs")
echo "building $count images"
[ "$count" -ge 74 ] || { echo "expected 30 agent images and 7 test images per system, got $count" >&2; exit 1; }
# shellcheck disable=SC2086
nix build --no-link --max-jobs 4 $attrs $STANDIN_OVERRIDES
# A second build of the same derivation must give the same bytes.
# shellcheck disable=SC2086
nix build --no-link --rebuild .#packages.x86_64-linux.pi .#packages.aarch64-linux.test-nix-custom $STANDIN_OVERRIDES

echo "== go test"
# Packed layers are cached between runs on a user's machine; the tests start
# from an empty cache of their own, so nothing a previous run left is read.
AGENT_IMAGES_LAYER_CACHE=$(mktemp -d)
export AGENT_IMAGES_LAYER_CACHE
trap 'rm -rf "$AGENT_IMAGES_LAYER_CACHE"' EXIT
go test -timeout 40m -count=1 ./... ./testbed/... 2>&1 | tee /tmp/agent-images-go-test.log
