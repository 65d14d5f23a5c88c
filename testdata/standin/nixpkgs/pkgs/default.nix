# The stand-in package set: a tiny stdenv, the trivial builders agent-images
# and dockerTools use, dockerTools itself, and small packages built from a
# static busybox. Every package here says in its output that it is a stand-in.
{
  lib,
  system,
  config,
}:
let
  allowUnfree = config.allowUnfree or false;
  allowBroken = config.allowBroken or false;

  licenseList = l: if builtins.isList l then l else [ l ];

  # Reduced stdenv.mkDerivation: attributes become the builder's environment,
  # `passthru` and `meta` stay on the Nix value, unfree packages are refused
  # unless config.allowUnfree is set and broken ones unless
  # config.allowBroken is (check-meta.nix), and a package with several `outputs`
  # is, like in nixpkgs (lib.extendDerivation), the first output with every
  # output as an attribute (`curl.bin`, `util-linux.lib`), each output
  # carrying `outputSpecified` so lib.getOutput keeps the one chosen.
  mkDerivation =
    attrs@{
      passthru ? { },
      meta ? { },
      nativeBuildInputs ? [ ],
      buildInputs ? [ ],
      outputs ? [ "out" ],
      ...
    }:
    let
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      unfree = builtins.any (l: !(l.free or true)) (licenseList (meta.license or [ ]));
      refusal =
        if unfree && !allowUnfree then
          "Package ‘${name}’ has an unfree license, refusing to evaluate (stand-in nixpkgs: set config.allowUnfree = true)."
        else if (meta.broken or false) && !allowBroken then
          "Package ‘${name}’ is marked as broken, refusing to evaluate (stand-in nixpkgs: set config.allowBroken = true)."
        else
          null;
      env = removeAttrs attrs [
        "passthru"
        "meta"
      ];
      drv = derivation (
        {
          inherit system;
          builder = "/bin/bash";
          args = [
            "-e"
            ./setup.sh
          ];
          SOURCE_DATE_EPOCH = "315532800";
        }
        // env
        // {
          inherit
            name
            nativeBuildInputs
            buildInputs
            outputs
            ;
        }
      );
      common =
        drv
        // passthru
        // {
          meta = {
            platforms = lib.platforms.linux;
          }
          // meta;
          inherit passthru;
          overrideAttrs = f: mkDerivation (attrs // (if builtins.isFunction f then f attrs else f));
        }
        // byOutput
        // {
          all = builtins.attrValues byOutput;
        };
      byOutput = lib.genAttrs outputs (
        output:
        common
        // {
          inherit (drv.${output}) outPath drvPath outputName;
          outputSpecified = true;
        }
      );
    in
    # As in nixpkgs (extendDerivation with check-meta's validity), a refused
    # package still shows its meta and other attributes; only building it,
    # or reading its drvPath or outPath, fails.
    if refusal == null then
      common
    else
      common
      // {
        drvPath = throw refusal;
        outPath = throw refusal;
      };

  runCommandWith' =
    name: env: buildCommand:
    mkDerivation (
      {
        inherit name buildCommand;
        preferLocalBuild = true;
        allowSubstitutes = false;
      }
      // env
    );

  busyboxBinary = "/opt/agent-images-standin/${system}/busybox";

  # A package whose bin/ holds busybox applets under their usual names.
  busyboxApplets =
    {
      pname,
      version,
      applets,
      description,
      mainProgram ? null,
    }:
    runCommandWith' "${pname}-${version}"
      {
        inherit pname version;
        passthru.isStandin = true;
        meta = {
          description = "${description} (agent-images stand-in: busybox applets)";
        }
        // lib.optionalAttrs (mainProgram != null) { inherit mainProgram; };
      }
      ''
        mkdir -p $out/bin $out/share/agent-images-standin
        for a in ${toString applets}; do ln -s ${busybox}/bin/busybox $out/bin/$a; done
        echo "${pname}: busybox applets standing in for the real package" > $out/share/agent-images-standin/README
      '';

  # A command that only answers --version, for tools busybox lacks.
  versionOnlyTool =
    {
      pname,
      version,
      programs,
      versionLine,
      description,
      outputs ? [ "out" ],
      extraCommands ? "",
    }:
    runCommandWith' "${pname}-${version}"
      {
        inherit pname version outputs;
        meta = {
          description = "${description} (agent-images stand-in: answers --version only)";
          mainProgram = builtins.head programs;
        };
      }
      ''
        for o in $outputs; do mkdir -p "''${!o}"; done
        # Programs go into the first output, as nixpkgs' `bin` output.
        first=''${outputs%% *}
        bindir="''${!first}/bin"
        mkdir -p "$bindir"
        for p in ${toString programs}; do
          cat > "$bindir/$p" <<EOF
        #!${busybox}/bin/sh
        case "\$1" in
          --version|-V|version) echo "${versionLine}"; exit 0 ;;
        esac
        echo "$p: agent-images stand-in for ${pname} ${version}; only --version works here" >&2
        exit 1
        EOF
          chmod 0555 "$bindir/$p"
        done
        ${extraCommands}
      '';

  # A package that only has placeholder shared libraries, for nix-ld's list,
  # with the outputs the real package has: the libraries go into its `lib`
  # output where it has one (util-linux, gcc), else into `out`; `bin` and
  # `dev` hold a note, as they would hold programs and headers.
  libraryStandin =
    pname: version: outputs: libs:
    let
      libOutput = if builtins.elem "lib" outputs then "lib" else "out";
    in
    runCommandWith' "${pname}-${version}"
      {
        inherit pname version outputs;
        meta.description = "${pname} shared libraries (agent-images stand-in: placeholder files, not ELF)";
      }
      ''
        for o in $outputs; do
          mkdir -p "''${!o}/share/agent-images-standin"
          echo "agent-images stand-in: the $o output of ${pname} ${version}" > "''${!o}/share/agent-images-standin/README"
        done
        libOutput=${libOutput}
        mkdir -p "''${!libOutput}/lib"
        for l in ${toString libs}; do
          echo "agent-images stand-in for ${pname} ${version}: $l is not a real library" > "''${!libOutput}/lib/$l"
        done
      '';

  # Developer tools are not packaged here; these run the host's copy so
  # `nix develop` and `nix fmt` still do something useful offline.
  hostTool =
    pname: programs:
    runCommandWith' "${pname}-host-standin"
      {
        inherit pname;
        version = "host";
        meta = {
          description = "${pname} from the host (agent-images stand-in)";
          mainProgram = builtins.head programs;
        };
      }
      ''
        mkdir -p $out/bin
        for p in ${toString programs}; do
          cat > $out/bin/$p <<EOF
        #!/bin/sh
        for d in /usr/local/go/bin /usr/local/bin /usr/bin /bin; do
          if [ -x "\$d/$p" ]; then exec "\$d/$p" "\$@"; fi
        done
        echo "$p: agent-images stand-in; the host has no $p, install it to use this tool offline" >&2
        exit 127
        EOF
          chmod 0555 $out/bin/$p
        done
      '';

  busybox = runCommandWith' "busybox-standin" {
    pname = "busybox";
    version = "static-host";
    meta.description = "Static busybox copied from ${busyboxBinary} (agent-images stand-in)";
  } ''
    mkdir -p $out/bin
    if [ ! -x ${busyboxBinary} ]; then
      echo "stand-in nixpkgs: ${busyboxBinary} is missing; run scripts/setup-host.sh" >&2
      exit 1
    fi
    cp ${busyboxBinary} $out/bin/busybox
    chmod 0555 $out/bin/busybox
    ln -s busybox $out/bin/sh
  '';

  coreutilsApplets = [
    "["
    "base64"
    "basename"
    "cat"
    "chgrp"
    "chmod"
    "chown"
    "cp"
    "cut"
    "date"
    "dd"
    "df"
    "dirname"
    "du"
    "echo"
    "env"
    "expand"
    "expr"
    "factor"
    "false"
    "fold"
    "groups"
    "head"
    "id"
    "link"
    "ln"
    "logname"
    "ls"
    "md5sum"
    "mkdir"
    "mkfifo"
    "mknod"
    "mktemp"
    "mv"
    "nl"
    "nproc"
    "od"
    "paste"
    "printf"
    "pwd"
    "readlink"
    "realpath"
    "rm"
    "rmdir"
    "seq"
    "sha1sum"
    "sha256sum"
    "sha512sum"
    "shuf"
    "sleep"
    "sort"
    "stat"
    "stty"
    "sync"
    "tac"
    "tail"
    "tee"
    "test"
    "timeout"
    "touch"
    "tr"
    "true"
    "truncate"
    "tty"
    "uname"
    "unexpand"
    "uniq"
    "unlink"
    "wc"
    "whoami"
    "yes"
  ];

  hostPlatform = {
    inherit system;
    isLinux = true;
    isx86_64 = system == "x86_64-linux";
    isAarch64 = system == "aarch64-linux";
    linuxArch = if system == "x86_64-linux" then "x86_64" else "arm64";
    # lib/systems/default.nix: where the dynamic loader lives.
    libDir = if system == "x86_64-linux" then "lib64" else "lib";
  };

  glibc =
    let
      loader = if hostPlatform.isx86_64 then "ld-linux-x86-64.so.2" else "ld-linux-aarch64.so.1";
    in
    runCommandWith' "glibc-standin"
      {
        pname = "glibc";
        version = "standin";
        passthru = { inherit loader; };
        meta.description = "GNU C library (agent-images stand-in: placeholder loader, not ELF)";
      }
      ''
        mkdir -p $out/lib
        echo "agent-images stand-in: ${loader} is not a real dynamic linker" > $out/lib/${loader}
        echo "agent-images stand-in: libc.so.6 is not a real library" > $out/lib/libc.so.6
      '';

  ccStandin = libraryStandin "gcc" "14.3.0" [ "out" "lib" ] [
    "libstdc++.so.6"
    "libgcc_s.so.1"
  ];

  dockerTools = import ./docker {
    inherit
      lib
      system
      runCommandWith'
      closureInfo
      writeText
      ;
  };

  # What `nix develop` sources before it records the shell's environment:
  # the PATH of the shell's packages, ahead of the host's.
  shellSetup = runCommandWith' "stdenv-standin-shell-setup" { } ''
    mkdir -p $out
    cat > $out/setup <<'EOF'
    __standin_path=
    for p in $nativeBuildInputs $buildInputs; do
      if [ -d "$p/bin" ]; then __standin_path="''${__standin_path:+$__standin_path:}$p/bin"; fi
    done
    export PATH="''${__standin_path:+$__standin_path:}/usr/local/bin:/usr/bin:/bin"
    unset __standin_path
    EOF
  '';

  writeText =
    name: text:
    runCommandWith' name {
      inherit text;
      passAsFile = [ "text" ];
    } ''cp "$textPath" "$out"'';

  # nixpkgs' closureInfo: the registration file `nix-store --load-db` reads,
  # the list of store paths and their total NAR size.
  closureInfo =
    { rootPaths }:
    derivation {
      name = "closure-info";
      inherit system;
      builder = "/usr/bin/python3";
      args = [ ./closure-info.py ];
      __structuredAttrs = true;
      exportReferencesGraph.closure = rootPaths;
      preferLocalBuild = true;
    };

  pkgs = {
    # The nixpkgs source itself, as `pkgs.path` is in nixpkgs.
    path = ../.;
    inherit
      lib
      system
      config
      busybox
      dockerTools
      writeText
      closureInfo
      glibc
      ;
    stdenv = {
      inherit mkDerivation hostPlatform;
      buildPlatform = hostPlatform;
      targetPlatform = hostPlatform;
      cc = {
        cc = ccStandin;
        bintools = {
          dynamicLinker = "${glibc}/lib/${glibc.loader}";
        };
        libc = glibc;
      };
    };
    stdenvNoCC = pkgs.stdenv;
    runCommand = runCommandWith';
    runCommandLocal = runCommandWith';
    runCommandNoCC = runCommandWith';

    symlinkJoin =
      args@{
        name ? "${args.pname}-${args.version}",
        paths,
        postBuild ? "",
        ...
      }:
      runCommandWith' name
        (
          removeAttrs args [
            "name"
            "postBuild"
          ]
          // {
            inherit postBuild;
          }
        )
        ''
          /usr/bin/python3 ${./lndir.py} $out ${toString paths}
          eval "$postBuild"
        '';

    mkShell =
      attrs@{
        name ? "nix-shell",
        packages ? [ ],
        inputsFrom ? [ ],
        buildInputs ? [ ],
        nativeBuildInputs ? [ ],
        propagatedBuildInputs ? [ ],
        propagatedNativeBuildInputs ? [ ],
        shellHook ? "",
        ...
      }:
      mkDerivation (
        removeAttrs attrs [
          "packages"
          "inputsFrom"
        ]
        // {
          inherit name shellHook;
          # `nix develop` sources $stdenv/setup and dumps one file per output.
          stdenv = shellSetup;
          outputs = [ "out" ];
          nativeBuildInputs = packages ++ nativeBuildInputs;
          buildCommand = ''
            echo "agent-images stand-in mkShell: use nix develop, not nix build" > $out
          '';
        }
      );

    coreutils = busyboxApplets {
      pname = "coreutils";
      version = "9.7";
      applets = coreutilsApplets;
      description = "GNU core utilities";
    };
    bashInteractive =
      runCommandWith' "bash-interactive-standin"
        {
          pname = "bash";
          version = "5.3";
          meta = {
            description = "GNU Bourne-Again Shell (agent-images stand-in: busybox ash)";
            mainProgram = "bash";
          };
        }
        ''
          mkdir -p $out/bin
          ln -s ${busybox}/bin/busybox $out/bin/sh
          ln -s ${busybox}/bin/busybox $out/bin/ash
          # busybox has no `bash` applet name, so bash is a script running ash.
          printf '#!%s\nexec %s ash "$@"\n' ${busybox}/bin/sh ${busybox}/bin/busybox > $out/bin/bash
          chmod 0555 $out/bin/bash
        '';
    findutils = busyboxApplets {
      pname = "findutils";
      version = "4.10.0";
      applets = [
        "find"
        "xargs"
      ];
      description = "GNU find and xargs";
    };
    gnugrep = busyboxApplets {
      pname = "gnugrep";
      version = "3.12";
      applets = [
        "grep"
        "egrep"
        "fgrep"
      ];
      description = "GNU grep";
      mainProgram = "grep";
    };
    gnused = busyboxApplets {
      pname = "gnused";
      version = "4.9";
      applets = [ "sed" ];
      description = "GNU sed";
      mainProgram = "sed";
    };
    gawk = busyboxApplets {
      pname = "gawk";
      version = "5.3.2";
      applets = [ "awk" ];
      description = "GNU awk";
      mainProgram = "awk";
    };
    diffutils = busyboxApplets {
      pname = "diffutils";
      version = "3.12";
      applets = [
        "diff"
        "cmp"
      ];
      description = "GNU diff and cmp";
    };
    gnutar = busyboxApplets {
      pname = "gnutar";
      version = "1.35";
      applets = [ "tar" ];
      description = "GNU tar";
      mainProgram = "tar";
    };
    gzip = busyboxApplets {
      pname = "gzip";
      version = "1.14";
      applets = [
        "gzip"
        "gunzip"
        "zcat"
      ];
      description = "GNU zip";
      mainProgram = "gzip";
    };
    less = busyboxApplets {
      pname = "less";
      version = "679";
      applets = [ "less" ];
      description = "Pager";
      mainProgram = "less";
    };
    which = busyboxApplets {
      pname = "which";
      version = "2.23";
      applets = [ "which" ];
      description = "Shows the full path of commands";
      mainProgram = "which";
    };
    git = versionOnlyTool {
      pname = "git";
      version = "2.51.0";
      programs = [ "git" ];
      versionLine = "git version 2.51.0 (agent-images stand-in)";
      description = "Distributed version control system";
    };
    ripgrep = versionOnlyTool {
      pname = "ripgrep";
      version = "14.1.1";
      programs = [ "rg" ];
      versionLine = "ripgrep 14.1.1 (agent-images stand-in)";
      description = "Recursive line-oriented search tool";
    };
    jq = versionOnlyTool {
      pname = "jq";
      version = "1.8.1";
      programs = [ "jq" ];
      versionLine = "jq-1.8.1 (agent-images stand-in)";
      description = "Command-line JSON processor";
    };
    curl = versionOnlyTool {
      pname = "curl";
      version = "8.16.0";
      programs = [ "curl" ];
      versionLine = "curl 8.16.0 (agent-images stand-in)";
      description = "Command line tool for transferring data with URL syntax";
      # As in nixpkgs: the program in `bin` (the default output), libcurl in
      # `out`, which is where nix-ld's library path finds it.
      outputs = [
        "bin"
        "dev"
        "out"
      ];
      extraCommands = ''
        mkdir -p $out/lib
        echo "agent-images stand-in: libcurl.so.4 is not a real library" > $out/lib/libcurl.so.4
      '';
    };
    # llm-agents' overlay at the locked revision overrides bun (a baseline
    # build for CPUs without AVX).
    bun = versionOnlyTool {
      pname = "bun";
      version = "1.3.13";
      programs = [ "bun" ];
      versionLine = "1.3.13 (agent-images stand-in)";
      description = "Incredibly fast JavaScript runtime, bundler, transpiler and package manager";
    };

    hello = versionOnlyTool {
      pname = "hello";
      version = "2.12.2";
      programs = [ "hello" ];
      versionLine = "hello (GNU Hello) 2.12.2 (agent-images stand-in)";
      description = "Program that produces a familiar, friendly greeting";
    };
    cacert =
      runCommandWith' "nss-cacert-standin"
        {
          pname = "nss-cacert";
          version = "host";
          meta.description = "CA certificate bundle (agent-images stand-in: copy of the host's bundle)";
        }
        ''
          mkdir -p $out/etc/ssl/certs
          cp /etc/ssl/certs/ca-certificates.crt $out/etc/ssl/certs/ca-bundle.crt
        '';

    # Not Nix: it cannot build anything, so it says so and fails. Checks that
    # need a real Nix look for "agent-images stand-in" on stderr and skip.
    nix =
      runCommandWith' "nix-standin"
        {
          pname = "nix";
          version = "2.31.0";
          meta = {
            description = "Nix package manager (agent-images stand-in: not functional)";
            mainProgram = "nix";
          };
        }
        ''
          mkdir -p $out/bin
          cat > $out/bin/nix <<EOF
          #!${busybox}/bin/sh
          echo "\$0: agent-images stand-in, not a real Nix; checks that need Nix must skip" >&2
          exit 1
          EOF
          chmod 0555 $out/bin/nix
          for p in nix-build nix-shell nix-store nix-env nix-instantiate nix-collect-garbage; do
            ln -s nix $out/bin/$p
          done
        '';

    # Not nix-ld: a script cannot act as an ELF interpreter. The layout is
    # the real package's (pkgs/by-name/ni/nix-ld/package.nix): the program
    # in bin/, libexec/nix-ld linking to it, nix-support/ldpath naming the
    # loader path it serves, and a tmpfiles rule that links it there.
    nix-ld =
      let
        ldpath = "/${hostPlatform.libDir}/${glibc.loader}";
      in
      runCommandWith' "nix-ld-2.0.5"
        {
          pname = "nix-ld";
          version = "2.0.5";
          meta = {
            description = "Run unpatched dynamic binaries on NixOS (agent-images stand-in: not a loader)";
            platforms = lib.platforms.linux;
          };
        }
        ''
          mkdir -p $out/bin $out/libexec $out/nix-support $out/lib/tmpfiles.d
          printf '#!%s\necho "nix-ld: agent-images stand-in, not a real loader" >&2\nexit 1\n' ${busybox}/bin/sh > $out/bin/nix-ld
          chmod 0555 $out/bin/nix-ld
          ln -s $out/bin/nix-ld $out/libexec/nix-ld
          echo "${ldpath}" > $out/nix-support/ldpath
          echo "  L+ ${ldpath} - - - - $out/libexec/nix-ld" > $out/lib/tmpfiles.d/nix-ld.conf
        '';

    # getent (nixpkgs' top-level `getent`, glibc's program): the one
    # dynamically linked program of the stand-ins, so the images show that a
    # program on a C library looks users up where static ones do. It is the
    # host's getent with the host's glibc (Debian's libc-bin and libc6),
    # started through that glibc's loader, since the image has no
    # /lib64/ld-linux-x86-64.so.2. The host has no arm64 glibc, so on
    # aarch64-linux it is busybox's awk reading the files, as a static
    # program does, and says so.
    getent =
      let
        hostLib = "/lib/${if hostPlatform.isx86_64 then "x86_64" else "aarch64"}-linux-gnu";
      in
      runCommandWith' "getent-standin"
        {
          pname = "getent";
          version = "host";
          meta.description = "getent from the host's glibc (agent-images stand-in)";
        }
        ''
          mkdir -p $out/bin $out/libexec/getent
          if [ -e ${hostLib}/libc.so.6 ] && [ -e /usr/bin/getent ] && ${lib.boolToString hostPlatform.isx86_64}; then
            cp /usr/bin/getent ${hostLib}/libc.so.6 $out/libexec/getent/
            cp -L /lib64/${glibc.loader} $out/libexec/getent/${glibc.loader}
            chmod 0555 $out/libexec/getent/*
            printf '#!%s\nexec %s --library-path %s %s "$@"\n' ${busybox}/bin/sh \
              $out/libexec/getent/${glibc.loader} $out/libexec/getent $out/libexec/getent/getent > $out/bin/getent
          else
            cat > $out/bin/getent <<EOF
          #!${busybox}/bin/sh
          # agent-images stand-in: the host has no glibc for ${system}; reads the files as a static program does.
          case "\$1" in passwd|group) ;; *) echo "getent: agent-images stand-in knows passwd and group only" >&2; exit 1 ;; esac
          ${busybox}/bin/busybox awk -F: -v k="\$2" '\$1 == k || \$3 == k { print; found = 1 } END { exit !found * 2 }' /etc/\$1
          EOF
          fi
          chmod 0555 $out/bin/getent
        '';

    zlib = libraryStandin "zlib" "1.3.1" [ "out" "dev" ] [ "libz.so.1" ];
    zstd = libraryStandin "zstd" "1.5.7" [ "bin" "dev" "out" ] [ "libzstd.so.1" ];
    openssl = libraryStandin "openssl" "3.5.2" [ "bin" "dev" "out" ] [
      "libssl.so.3"
      "libcrypto.so.3"
    ];
    attr = libraryStandin "attr" "2.5.2" [ "bin" "dev" "out" ] [ "libattr.so.1" ];
    libssh = libraryStandin "libssh" "0.11.3" [ "out" "dev" ] [ "libssh.so.4" ];
    bzip2 = libraryStandin "bzip2" "1.0.8" [ "bin" "dev" "out" ] [ "libbz2.so.1" ];
    libxml2 = libraryStandin "libxml2" "2.14.5" [ "bin" "dev" "out" ] [ "libxml2.so.16" ];
    acl = libraryStandin "acl" "2.3.2" [ "bin" "dev" "out" ] [ "libacl.so.1" ];
    libsodium = libraryStandin "libsodium" "1.0.20" [ "out" "dev" ] [ "libsodium.so.26" ];
    util-linux = libraryStandin "util-linux" "2.41.1" [ "bin" "dev" "out" "lib" ] [
      "libuuid.so.1"
      "libblkid.so.1"
      "libmount.so.1"
    ];
    xz = libraryStandin "xz" "5.8.1" [ "bin" "dev" "out" ] [ "liblzma.so.5" ];
    systemd = libraryStandin "systemd" "257.8" [ "out" "dev" ] [ "libsystemd.so.0" ];

    go = hostTool "go" [
      "go"
      "gofmt"
    ];
    # nixfmt's command line (pkgs/by-name/ni/nixfmt): files are formatted in
    # place; with none it is a filter from stdin to stdout, which is why
    # `nix fmt` (no arguments since Nix 2.25) waits forever on it. The
    # host's nixfmt does the formatting when there is one; without it files
    # are left as they are and stdin is copied through.
    nixfmt =
      runCommandWith' "nixfmt-1.0.0"
        {
          pname = "nixfmt";
          version = "1.0.0";
          meta = {
            description = "Official formatter for Nix code (agent-images stand-in: the host's nixfmt, if any)";
            mainProgram = "nixfmt";
          };
        }
        ''
          mkdir -p $out/bin
          cat > $out/bin/nixfmt <<'EOF'
          #!/bin/sh
          for d in /usr/local/bin /usr/bin; do
            if [ -x "$d/nixfmt" ]; then exec "$d/nixfmt" "$@"; fi
          done
          files=0
          for a in "$@"; do
            case "$a" in
              -*) ;;
              *) files=$((files + 1)); echo "nixfmt: agent-images stand-in, no nixfmt on this host: $a left as it is" >&2 ;;
            esac
          done
          if [ "$files" = 0 ]; then exec cat; fi
          EOF
          chmod 0555 $out/bin/nixfmt
        '';

    # nixfmt-tree (pkgs/by-name/ni/nixfmt-tree): treefmt configured to run
    # nixfmt on *.nix. With no arguments it formats the whole tree (from the
    # enclosing git checkout, else the current directory) and never reads
    # stdin; arguments name the files or directories to format.
    nixfmt-tree =
      runCommandWith' "nixfmt-tree"
        {
          pname = "nixfmt-tree";
          version = "2.3.1";
          meta = {
            description = "Official Nix formatter zero-setup starter using treefmt (agent-images stand-in)";
            mainProgram = "treefmt";
          };
        }
        ''
          mkdir -p $out/bin
          cat > $out/bin/treefmt <<EOF
          #!/bin/sh
          set -e
          if [ "\$#" = 0 ]; then
            root=\$PWD
            while [ "\$root" != / ] && [ ! -e "\$root/.git" ]; do root=\$(dirname "\$root"); done
            if [ ! -e "\$root/.git" ]; then root=\$PWD; fi
            set -- "\$root"
          fi
          n=0
          for f in \$(find "\$@" -name .git -prune -o -type f -name '*.nix' -print | sort); do
            ${pkgs.nixfmt}/bin/nixfmt "\$f" </dev/null
            n=\$((n + 1))
          done
          echo "treefmt (agent-images stand-in): \$n .nix files through nixfmt" >&2
          EOF
          chmod 0555 $out/bin/treefmt
        '';
    actionlint = hostTool "actionlint" [ "actionlint" ];
    podman = hostTool "podman" [ "podman" ];
    skopeo = hostTool "skopeo" [ "skopeo" ];
    shellcheck = hostTool "shellcheck" [ "shellcheck" ];
    docker-distribution = hostTool "docker-distribution" [ "docker-registry" ];
  };
in
pkgs
