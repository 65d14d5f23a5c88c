# Builder of the stand-in stdenv. Real nixpkgs builds with its own bash and
# coreutils; here the host's /usr/bin and /bin follow the declared inputs on
# PATH, which a sandboxed build is given as extra-sandbox-paths (README.md).
set -eo pipefail
PATH=
for p in $nativeBuildInputs $buildInputs; do
  if [ -d "$p/bin" ]; then PATH="${PATH:+$PATH:}$p/bin"; fi
done
export PATH="${PATH:+$PATH:}/usr/bin:/bin"
export HOME=/homeless-shelter
export LC_ALL=C
umask 0022
if [ -n "${buildCommandPath:-}" ]; then
  source "$buildCommandPath"
else
  eval "$buildCommand"
fi
for output in ${outputs:-out}; do
  if [ ! -e "${!output}" ]; then
    echo "stand-in stdenv: the builder of $name did not create the $output output (${!output})" >&2
    exit 1
  fi
done
