# `import nixpkgs { system = ...; config = ...; }` for the benchmark: the test
# stand-in's package set (./standin, unchanged) with the base toolset grown to
# the size and store-path count of the real one, the shared runtimes nodejs,
# python3 and bun, and `agentImagesBench`, the functions the benchmark's
# llm-agents uses to size the agents the same way. Sizes come from
# ./sizes.json times the scale in ./bench.json; its seed picks the bytes.
args:
let
  pkgs = import ./standin args;
  inherit (pkgs) lib system;

  settings = builtins.fromJSON (builtins.readFile ./bench.json);
  sizes = builtins.fromJSON (builtins.readFile ./sizes.json);

  bench = import ./bench.nix {
    inherit lib system;
    inherit (pkgs) runCommand;
    inherit (settings) scale seed;
  };

  # The real base closure brings these libraries and data along with the 16
  # packages mkAgentImage installs; with busybox they make the 62 store
  # paths of sizes.json's base.
  baseLibraries = [
    "glibc-2.40-66"
    "perl-5.40.0"
    "gcc-14.3.0-lib"
    "openssl-3.5.2"
    "git-2.51.0-share"
    "pcre2-10.44"
    "perl5.40.0-libnet-3.15"
    "ncurses-6.5"
    "zlib-1.3.1"
    "curl-8.16.0-lib"
    "expat-2.7.1"
    "libidn2-2.3.8"
    "libunistring-1.3"
    "nghttp2-1.65.0-lib"
    "nghttp3-1.10.1"
    "ngtcp2-1.13.0"
    "libssh2-1.11.1"
    "brotli-1.1.0-lib"
    "zstd-1.5.7"
    "xz-5.8.1"
    "bzip2-1.0.8"
    "readline-8.3"
    "gmp-6.3.0"
    "mpfr-4.2.2"
    "acl-2.3.2"
    "attr-2.5.2"
    "libcap-2.76-lib"
    "oniguruma-6.9.10-lib"
    "libffi-3.5.1"
    "gettext-0.25.1"
    "libxcrypt-4.4.38"
    "krb5-1.21.3-lib"
    "keyutils-1.6.3-lib"
    "e2fsprogs-1.47.3"
    "libpsl-0.21.5"
    "publicsuffix-list-0-unstable-2025-07-31"
    "c-ares-1.34.5"
    "sqlite-3.50.2"
    "perl5.40.0-Error-0.17030"
    "perl5.40.0-TermReadKey-2.38"
    "perl5.40.0-IO-Socket-SSL-2.089"
    "perl5.40.0-Net-SSLeay-1.94"
    "perl5.40.0-URI-5.31"
    "tzdata-2025b"
    "iana-etc-20250505"
  ];

  basePackageNames = [
    "git"
    "coreutils"
    "bashInteractive"
    "ripgrep"
    "findutils"
    "gnugrep"
    "gnused"
    "gawk"
    "diffutils"
    "jq"
    "gnutar"
    "gzip"
    "less"
    "curl"
    "which"
    "cacert"
  ];

  # busybox, which every stand-in tool runs, is the 62nd path: it keeps its
  # real size and is not grown.
  base = bench.grow {
    part = "base";
    inherit (sizes.shared.base) mib;
    packages = map (n: pkgs.${n}) basePackageNames;
    libraries = baseLibraries;
  };

  # A runtime: a program answering --version, with its libraries.
  runtime =
    {
      pname,
      version,
      program,
      storePaths,
      mib,
    }:
    let
      main = pkgs.runCommand "${pname}-${version}" {
        inherit pname version;
        meta = {
          description = "${pname} (agent-images benchmark stand-in: answers --version only)";
          mainProgram = program;
        };
      } ''
        mkdir -p $out/bin
        printf '#!%s\necho "${program} ${version} (agent-images stand-in)"\n' ${pkgs.busybox}/bin/sh > $out/bin/${program}
        chmod 0555 $out/bin/${program}
      '';
    in
    builtins.head (
      (bench.grow {
        part = pname;
        inherit mib;
        packages = [ main ];
        libraries = builtins.genList (i: "${pname}-${version}-lib${toString i}") (storePaths - 1);
      }).packages
    );
in
pkgs
// builtins.listToAttrs (
  lib.imap0 (i: n: lib.nameValuePair n (builtins.elemAt base.packages i)) basePackageNames
)
// {
  nodejs = runtime {
    pname = "nodejs";
    version = "22.19.0";
    program = "node";
    inherit (sizes.shared.nodejs) mib storePaths;
  };
  python3 = runtime {
    pname = "python3";
    version = "3.13.7";
    program = "python3";
    inherit (sizes.shared.python3) mib storePaths;
  };
  bun = runtime {
    pname = "bun";
    version = "1.2.21";
    program = "bun";
    inherit (sizes.shared.bun) mib storePaths;
  };
  agentImagesBench = bench // {
    inherit sizes settings;
  };
}
