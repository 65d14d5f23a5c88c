#!/usr/bin/env bash
# The main job, on a fresh Debian machine: install what is missing, start a
# local registry, release several agents for both systems from this flake
# (with its stand-in inputs, as this machine cannot fetch nixpkgs), print the
# multi-arch indexes, and stop the registry.
#
#   scripts/release-local.sh                    # pi, codex, claude-code, opencode
#   AGENTS=pi,goose-cli scripts/release-local.sh
#   KEEP_REGISTRY=1 scripts/release-local.sh    # leave the registry running
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/setup-host.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
export PATH="$PATH:/usr/local/go/bin"

agents=${AGENTS:-pi,codex,claude-code,opencode}
mkdir -p dist/bin
go build -o dist/bin/release ./cmd/release

# Debian's distribution registry on a free loopback port; its data stays in
# dist/registry so a later run finds what this one pushed.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p dist/registry
cat >dist/registry/config.yml <<CFG
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $root/dist/registry/data }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
CFG
docker-registry serve dist/registry/config.yml >dist/registry/log 2>&1 &
registry_pid=$!
if [ "${KEEP_REGISTRY:-0}" != 1 ]; then
  trap 'kill $registry_pid 2>/dev/null || true' EXIT
fi
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break
  sleep 0.2
done
prefix=127.0.0.1:$port/agent-images
echo "registry: http://127.0.0.1:$port (pid $registry_pid)"

# Releases are signed: with a key pair of this checkout's own here (keyless
# signing needs GitHub's OIDC token).
export COSIGN_PASSWORD=${COSIGN_PASSWORD:-}
[ -f dist/cosign.key ] || dist/bin/release keygen --prefix dist/cosign

dist/bin/release --agent "$agents" --push --registry "$prefix" --insecure --key dist/cosign.key \
  --override-input "nixpkgs=path:$root/testdata/standin/nixpkgs" \
  --override-input "llm-agents=path:$root/testdata/standin/llm-agents" \
  --override-input "llm-agents/nixpkgs=path:$root/testdata/standin/nixpkgs" \
  --output dist/release.json

echo
echo "== indexes"
for agent in ${agents//,/ }; do
  echo "-- $prefix/$agent:latest"
  skopeo inspect --raw --tls-verify=false "docker://$prefix/$agent:latest"
  echo
done
echo
echo "== verify"
for agent in ${agents//,/ }; do
  dist/bin/release verify --agent "$agent" --registry "$prefix" --insecure --key dist/cosign.pub
done
echo
echo "report: dist/release.json"
if [ "${KEEP_REGISTRY:-0}" = 1 ]; then
  echo "registry left running on 127.0.0.1:$port (kill $registry_pid to stop it)"
fi
