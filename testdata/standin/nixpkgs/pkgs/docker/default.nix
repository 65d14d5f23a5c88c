# Stand-in for nixpkgs' dockerTools: streamLayeredImage and buildLayeredImage
# with the arguments of pkgs/build-support/docker/default.nix and the
# behaviour its documentation promises (contents linked into /, extraCommands,
# fakeRootCommands under fakeroot, one layer per store path up to maxLayers,
# includeNixDB, uid/gid/uname/gname for the store layers, fixed timestamps).
# Host tools do the work (python3, GNU tar, fakeroot, nix-store, sqlite3,
# gzip), which a sandboxed build is given as extra-sandbox-paths. Arguments the stand-in cannot honour
# (fromImage, enableFakechroot, layeringPipeline) are accepted, as the real
# function accepts them, and refused with a message when set.
{
  lib,
  system,
  runCommandWith',
  closureInfo,
  writeText,
}:
let
  storeDir = builtins.storeDir;

  defaultArchitecture =
    {
      x86_64-linux = "amd64";
      aarch64-linux = "arm64";
    }
    .${system};

  compressors = {
    none = {
      ext = "";
      command = "cat";
    };
    gz = {
      ext = ".gz";
      # Real nixpkgs uses `pigz -nTR`; -n keeps name and time out of the header.
      command = "/usr/bin/gzip -n -6";
    };
    zstd = {
      ext = ".zst";
      command = "/usr/bin/zstd -T1 -q --no-progress";
    };
  };

  compressorForImage =
    compressor: imageName:
    compressors.${compressor}
      or (throw "in docker image ${imageName}: compressor must be one of: [${toString (builtins.attrNames compressors)}]");

  # Same steps as nixpkgs' mkDbExtraCommand, with the host's nix-store and
  # sqlite3: register the closure of `contents` in a database inside the image.
  mkDbExtraCommand =
    contents:
    let
      contentsList = if builtins.isList contents then contents else [ contents ];
    in
    ''
      echo "Generating the nix database..."
      export NIX_REMOTE="local?root=$PWD"
      export USER=nobody
      /usr/bin/nix-store --load-db < ${closureInfo { rootPaths = contentsList; }}/registration
      # Registration times are "now"; pin them so the image is reproducible.
      /usr/bin/sqlite3 nix/var/nix/db/db.sqlite "UPDATE ValidPaths SET registrationTime = ''${SOURCE_DATE_EPOCH}"
      unset NIX_REMOTE
      mkdir -p nix/var/nix/gcroots/docker/
      for i in ${lib.concatStringsSep " " contentsList}; do
        ln -s $i nix/var/nix/gcroots/docker/$(basename $i)
      done
    '';
in
rec {
  streamLayeredImage = lib.makeOverridable (
    {
      name,
      tag ? null,
      fromImage ? null,
      contents ? [ ],
      config ? { },
      architecture ? defaultArchitecture,
      created ? "1970-01-01T00:00:01Z",
      mtime ? "1970-01-01T00:00:01Z",
      uid ? 0,
      gid ? 0,
      uname ? "root",
      gname ? "root",
      maxLayers ? 100,
      extraCommands ? "",
      fakeRootCommands ? "",
      enableFakechroot ? false,
      includeStorePaths ? true,
      includeNixDB ? false,
      passthru ? { },
      meta ? { },
      layeringPipeline ? null,
      debug ? false,
    }:
    assert lib.assertMsg (fromImage == null)
      "dockerTools.streamLayeredImage (agent-images stand-in): fromImage is not supported here";
    # Real nixpkgs runs fakeRootCommands inside proot with the image tree as
    # root and /dev, /proc, /sys and the store bound in, and leaves /proc,
    # /sys and the store out of the tar. proot cannot run this stand-in's
    # host tools (bash, tar, fakeroot) inside a tree that does not hold
    # them, so that path is refused rather than imitated loosely.
    assert lib.assertMsg (!enableFakechroot)
      "dockerTools.streamLayeredImage (agent-images stand-in): enableFakechroot is not supported here (agent-images never sets it)";
    assert lib.assertMsg (layeringPipeline == null)
      "dockerTools.streamLayeredImage (agent-images stand-in): layeringPipeline is not supported here";
    assert lib.assertMsg (maxLayers > 1) "the maxLayers argument of dockerTools.streamLayeredImage function must be greather than 1 (current value: ${toString maxLayers})";
    let
      baseName = baseNameOf name;
      contentsList = if builtins.isList contents then contents else [ contents ];

      baseJson = writeText "${baseName}-config.json" (
        builtins.toJSON {
          inherit created config architecture;
          preferLocalBuild = true;
          os = "linux";
        }
      );

      # The customisation layer as nixpkgs makes it without enableFakechroot:
      # fakeRootCommands run in the root tree under fakeroot, then the whole
      # tree is tarred. Nothing is excluded (real nixpkgs excludes /proc,
      # /sys and the store only in the enableFakechroot path, where they are
      # bind mounts), so a nix/store that includeNixDB created here lands in
      # this layer, root-owned unless fakeRootCommands chown it, and wins
      # over the store layers' /nix/store.
      customisationLayer = runCommandWith' "${baseName}-customisation-layer" {
        paths = contentsList;
        extraCommands = (lib.optionalString includeNixDB (mkDbExtraCommand contents)) + extraCommands;
        inherit fakeRootCommands;
        passAsFile = [
          "extraCommands"
          "fakeRootCommands"
        ];
      } ''
        /usr/bin/python3 ${../lndir.py} old_out $paths
        (cd old_out; source "$extraCommandsPath")
        mkdir $out
        # fakeroot fakes ownership by preloading into dynamically linked
        # programs, as nixpkgs' coreutils are; the stand-in's busybox is
        # static and would really chown, which a sandboxed build may not,
        # so the host's dynamically linked tools come first under fakeroot.
        # In the sandbox's user namespace a real chown to an unmapped uid
        # fails with EINVAL, which Debian's fakeroot does not ignore
        # (nixpkgs patches its own to): FAKEROOTDONTTRYCHOWN skips it.
        PATH=/usr/bin:$PATH FAKEROOTDONTTRYCHOWN=1 /usr/bin/fakeroot /bin/bash -e -c '
          cd old_out
          source "$fakeRootCommandsPath"
          /usr/bin/tar \
            --sort=name \
            --numeric-owner --mtime "@$SOURCE_DATE_EPOCH" \
            --hard-dereference \
            --format=gnu \
            -cf $out/layer.tar .
        '
        sha256sum $out/layer.tar | cut -d " " -f 1 > $out/checksum
      '';

      conf = derivation {
        name = "${baseName}-conf.json";
        inherit system;
        builder = "/usr/bin/python3";
        args = [ ./conf.py ];
        __structuredAttrs = true;
        exportReferencesGraph.closure = lib.optionals includeStorePaths [
          baseJson
          customisationLayer
        ];
        # Implementation details of dockerTools, left out of the image.
        unnecessaryPaths = [
          "${baseJson}"
          "${customisationLayer}"
        ];
        imageName = lib.toLower name;
        inherit
          tag
          created
          mtime
          uid
          gid
          uname
          gname
          maxLayers
          ;
        baseJson = "${baseJson}";
        inherit storeDir;
        customisationLayer = "${customisationLayer}";
        preferLocalBuild = true;
      };

      imageTag =
        if tag != null then
          tag
        else
          builtins.head (
            lib.strings.splitString "-" (baseNameOf (builtins.unsafeDiscardStringContext conf.outPath))
          );

      streamScript = runCommandWith' "stream-${baseName}" {
        inherit meta;
        # As nixpkgs: the conf derivation is not in passthru (release finds
        # it through this build command's references, see mkAgentImage).
        passthru = passthru // {
          inherit imageTag;
          isExe = true;
        };
        imageName = lib.toLower name;
      } ''
        printf '#!/bin/sh\nexec /usr/bin/python3 %s %s "$@"\n' ${./stream.py} ${conf} > $out
        chmod 0555 $out
      '';
    in
    streamScript
  );

  buildLayeredImage = lib.makeOverridable (
    {
      name,
      compressor ? "gz",
      ...
    }@args:
    let
      stream = streamLayeredImage (removeAttrs args [ "compressor" ]);
      compress = compressorForImage compressor name;
    in
    runCommandWith' "${baseNameOf name}.tar${compress.ext}" {
      inherit (stream) imageName;
      passthru = {
        inherit (stream) imageTag;
      };
    } "${stream} | ${compress.command} > $out"
  );
}
