#!/usr/bin/env bash
# The benchmark of issues 9 and 20: release the benchmark image set
# (realistic sizes, testdata/bench) on this machine and print one table: a
# cold release, pushes of the built images with an empty layer cache (gzip
# and zstd), a second cold release with a warm layer cache, the reruns a
# nightly meets, a skopeo/podman baseline over archives `nix build` makes of
# the same images, the physical limits measured here, and which targets are
# met. Not part of CI: it takes the whole machine for minutes.
#
#   scripts/bench.sh                      # default scale 0.05, --runtime none, unsigned
#   scripts/bench.sh -scale 1.0           # the full estimate (about 9 GB of layers)
#   scripts/bench.sh -runtime podman -key # with podman smoke tests and key signing
#   scripts/bench.sh -agents pi,codex -systems x86_64-linux -scale 0.01
#
# Every run builds its images from a fresh seed, so the Nix store grows by
# about 25x the scale in GB per run (the images and their archives);
# `nix-collect-garbage` takes it back.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh >/dev/null
# shellcheck source=scripts/env.sh
source scripts/env.sh
export PATH="$PATH:/usr/local/go/bin"
exec go run ./testbed/bench "$@"
