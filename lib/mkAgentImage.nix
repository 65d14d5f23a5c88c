# mkAgentImage: an OCI image (docker-archive, built by dockerTools) that runs
# one agent as an unprivileged user, with a small toolbox and, on request,
# single-user Nix and nix-ld. See docs/mkagentimage.md for every option.
{
  pkgs,
  lib ? pkgs.lib,
}:
let
  arguments = import ./arguments.nix { inherit lib; };

  system = pkgs.stdenv.hostPlatform.system;

  # Where foreign binaries look for the dynamic linker on each architecture;
  # nix-ld answers there when withNixLd is set.
  loaderPaths = {
    x86_64-linux = "/lib64/ld-linux-x86-64.so.2";
    aarch64-linux = "/lib/ld-linux-aarch64.so.1";
  };

  licenseList = l: if builtins.isList l then l else [ l ];

  # nixpkgs' unfree licences say free = false; llm-agents' own `unfree`
  # licence says free = true (so nixpkgs evaluates it without allowUnfree)
  # and only its shortName tells. Either makes a licence unfree here.
  isUnfreeLicense = l: !(l.free or true) || lib.hasPrefix "unfree" (l.shortName or "");

  # The SPDX expression of a package's licences; unfree licences have no SPDX
  # identifier, so they all read as LicenseRef-unfree.
  spdxOf =
    pkg:
    let
      licenses = licenseList (pkg.meta.license or [ ]);
      one =
        l:
        if isUnfreeLicense l then "LicenseRef-unfree" else l.spdxId or "LicenseRef-${l.shortName or "unknown"}";
    in
    if licenses == [ ] then
      "NOASSERTION"
    else
      lib.concatStringsSep " AND " (lib.unique (map one licenses));

  isUnfree = pkg: lib.any isUnfreeLicense (licenseList (pkg.meta.license or [ ]));

  # NixOS' programs.nix-ld default library list (nixos/modules/programs/nix-ld.nix).
  defaultNixLdLibraries = with pkgs; [
    zlib
    zstd
    stdenv.cc.cc
    curl
    openssl
    attr
    libssh
    bzip2
    libxml2
    acl
    libsodium
    util-linux
    xz
    systemd
  ];

  defaultBasePackages = with pkgs; [
    git
    coreutils
    bashInteractive
    ripgrep
    findutils
    gnugrep
    gnused
    gawk
    diffutils
    jq
    gnutar
    gzip
    less
    curl
    which
    cacert
  ];
in
{
  name,
  tag ? "latest",
  agent,
  entrypoint ? [ (agent.meta.mainProgram or (lib.getName agent)) ],
  basePackages ? defaultBasePackages,
  extraPackages ? [ ],
  extraEnv ? { },
  extraDirectories ? [ ],
  user ? "agent",
  uid ? 1000,
  gid ? uid,
  workingDir ? "/workspace",
  withNix ? false,
  nixPackage ? pkgs.nix,
  nixExperimentalFeatures ? [
    "nix-command"
    "flakes"
  ],
  bundleNixpkgs ? true,
  withNixLd ? false,
  nixLdLibraries ? defaultNixLdLibraries,
  extraNixLdLibraries ? [ ],
  # Whether `release` publishes the image. Every image is releasable by
  # default, so any flake's images are; false keeps one local (test images).
  release ? true,
  allowRoot ? false,
  # OCI labels of the image config, over the defaults (title, description,
  # version, licenses): what `podman inspect` shows, and what release copies
  # onto the index registries display unless it knows better (see docs/tags.md,
  # "What registries show").
  labels ? { },
}:
let
  # Arguments that end up in /etc/passwd, in chown commands, as owned
  # directories, in the config's Env, in nix.conf or in the image reference
  # are checked while evaluating, before anything is built; each check
  # throws an error naming the argument and the rule it breaks (see
  # arguments.nix). `validated` is forced before the image is returned, in
  # this order: the first argument that breaks a rule is the one reported.
  context = { inherit uid allowRoot user; };
  check = arguments.check context;
  validated = [
    (check "name" "name" name)
    (check "tag" "tag" tag)
    (check "uid" "uid" uid)
    (check "gid" "gid" gid)
    (check "user" "user" user)
    (check "workingDir" "workingDir" workingDir)
  ]
  ++ map (check "extraDirectories entry" "directory") extraDirectories
  ++ lib.concatLists (
    lib.mapAttrsToList (key: value: [
      (check "extraEnv name" "env-name" key)
      (check "extraEnv.${builtins.toJSON key}" "env-value" value)
    ]) (check "extraEnv" "extraEnv" extraEnv)
  )
  ++ map (check "nixExperimentalFeatures entry" "feature") (
    check "nixExperimentalFeatures" "nixExperimentalFeatures" nixExperimentalFeatures
  )
  ++ lib.concatLists (
    lib.mapAttrsToList (key: value: [
      (check "labels key" "label-key" key)
      (check "labels.${builtins.toJSON key}" "label-value" value)
    ]) (check "labels" "labels" labels)
  );

  home = arguments.homeOf uid user;
  # gid 100 is "users" on most systems, which is why rootless Podman users
  # pick it; any other gid gets a group named after the user.
  group =
    if gid == 0 then
      "root"
    else if gid == 100 then
      "users"
    else
      user;

  extraDirs = map (arguments.expand home) extraDirectories;

  xdgDirs = {
    XDG_CONFIG_HOME = "${home}/.config";
    XDG_CACHE_HOME = "${home}/.cache";
    XDG_DATA_HOME = "${home}/.local/share";
    XDG_STATE_HOME = "${home}/.local/state";
  };

  loaderPath =
    loaderPaths.${system} or (throw "mkAgentImage: withNixLd has no loader path for ${system}");

  caBundle = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";

  # The nixpkgs the image was built from, for <nixpkgs> and the flake
  # registry's nixpkgs inside the image: offline, and sharing the store paths
  # the image already holds (as Nix's own docker.nix does with bundleNixpkgs),
  # where `flake:nixpkgs` would resolve at run time, over the network, to
  # some other nixpkgs. Named "source" like a flake input, so a nixpkgs that
  # came from a flake is that input's own store path, not a second copy.
  nixpkgsSource = builtins.path {
    path = pkgs.path;
    name = "source";
  };
  registry = builtins.toJSON {
    version = 2;
    flakes = [
      {
        from = {
          type = "indirect";
          id = "nixpkgs";
        };
        to = {
          type = "path";
          path = nixpkgsSource;
        };
      }
    ];
  };

  packages =
    [ agent ]
    ++ extraPackages
    ++ basePackages
    ++ lib.optional withNix nixPackage
    ++ lib.optional withNixLd pkgs.nix-ld
    ++ [ homeShim ];

  # Set first; a key in extraEnv replaces the default, so each variable
  # appears once in the image's Env.
  defaultEnv = {
    HOME = home;
    USER = user;
    PATH = "${lib.makeBinPath packages}:/bin";
    # The bundle's store path, not /etc/ssl/certs/ca-bundle.crt: that file
    # exists only while cacert is in basePackages, this one in every image.
    SSL_CERT_FILE = caBundle;
  }
  // xdgDirs
  // lib.optionalAttrs withNix {
    NIX_CONF_DIR = "/etc/nix";
  }
  // lib.optionalAttrs (withNix && bundleNixpkgs) {
    NIX_PATH = "nixpkgs=${nixpkgsSource}";
  }
  // lib.optionalAttrs withNixLd {
    NIX_LD = pkgs.stdenv.cc.bintools.dynamicLinker;
    NIX_LD_LIBRARY_PATH = lib.makeLibraryPath (nixLdLibraries ++ extraNixLdLibraries);
  };
  env = defaultEnv // extraEnv;

  isUnderHome = path: path == home || lib.hasPrefix "${home}/" path;

  # A directory below $HOME is owned by the user all the way up to $HOME, so
  # the user can manage its own home; elsewhere only the listed directory is
  # chowned and the parents mkdir -p creates stay root's.
  ownedChain =
    path:
    if isUnderHome path then
      let
        below = lib.splitString "/" (lib.removePrefix home path);
        steps = lib.filter (s: s != "") below;
      in
      lib.genList (n: lib.concatStringsSep "/" ([ home ] ++ lib.take n steps)) (
        builtins.length steps + 1
      )
    else
      [ path ];

  ownedDirs = lib.unique (
    lib.concatMap ownedChain ([ home ] ++ builtins.attrValues xdgDirs ++ [ workingDir ] ++ extraDirs)
  );

  # ---- Any runtime uid: the entrypoint shim ---------------------------------
  # Every Entrypoint starts with agent-images-entrypoint (lib/entrypoint.nix).
  # For the image's user it only runs the program; a container started as
  # another uid (docker --user, podman --userns=keep-id --user) gets a private
  # HOME laid out like this one, because that uid cannot write /home/<user>,
  # and, when /etc/passwd or /etc/group does not name it (Docker adds no
  # entry; Podman does), an entry appended to them (see etcFile below).
  homeShim = import ./entrypoint.nix { inherit pkgs lib; } {
    inherit
      home
      uid
      gid
      withNix
      ;
    homeDirs = lib.filter isUnderHome ownedDirs;
    xdgDefaults = lib.mapAttrs (_: dir: lib.removePrefix "${home}/" dir) xdgDirs;
  };
  # ---- end of the entrypoint shim ------------------------------------------

  passwd = lib.concatStrings (
    [ "root:x:0:0:root:/root:/bin/sh\n" ]
    ++ lib.optional (uid != 0) "${user}:x:${toString uid}:${toString gid}:${user}:${home}:/bin/sh\n"
    ++ [
      "nobody:x:${toString arguments.nobodyUid}:${toString arguments.nogroupGid}:nobody:/var/empty:/bin/false\n"
    ]
  );
  groupFile = lib.concatStrings (
    [ "root:x:0:\n" ]
    ++ lib.optional (gid != 0) "${group}:x:${toString gid}:${user}\n"
    ++ [ "nogroup:x:${toString arguments.nogroupGid}:\n" ]
  );
  nsswitch = ''
    passwd: files
    group: files
    shadow: files
    hosts: files dns
  '';
  nixConf = ''
    # Single-user Nix inside a container: no build users, and no sandbox,
    # because container runtimes rarely allow the namespaces it needs.
    build-users-group =
    sandbox = false
    experimental-features = ${lib.concatStringsSep " " nixExperimentalFeatures}
  '';

  owner = "${toString uid}:${toString gid}";
  writeFile = writeFileMode "0644";
  writeFileMode = mode: path: text: ''
    rm -f ${path}
    printf '%s' ${lib.escapeShellArg text} > ${path}
    chmod ${mode} ${path}
  '';
  # /etc/passwd and /etc/group are writable by every uid, so that the
  # entrypoint can add the entry of a uid the image does not name. Only a
  # file holding it names the user for every program: a preloaded
  # nss_wrapper would have to match the C library the agent was built with,
  # and statically linked agents (Go's os/user) read /etc/passwd themselves.
  # An entry grants nothing here: the image has no setuid programs (a store
  # path cannot hold one) and no login service.
  etcFile = writeFileMode "0666";

  fakeRootCommands = ''
    mkdir -p etc
    ${etcFile "etc/passwd" passwd}
    ${etcFile "etc/group" groupFile}
    ${writeFile "etc/nsswitch.conf" nsswitch}

    mkdir -p tmp
    chmod 1777 tmp

    # Scripts with #!/usr/bin/env find it when the image has an env binary.
    if [ -e bin/env ] && [ ! -e usr/bin/env ]; then
      mkdir -p usr/bin
      ln -s /bin/env usr/bin/env
    fi

    ${lib.concatMapStrings (dir: ''
      mkdir -p ${lib.escapeShellArg ".${dir}"}
      chown ${owner} ${lib.escapeShellArg ".${dir}"}
    '') ownedDirs}
  ''
  + lib.optionalString withNix ''
    mkdir -p etc/nix
    ${writeFile "etc/nix/nix.conf" nixConf}
  ''
  + lib.optionalString (withNix && bundleNixpkgs) ''
    ${writeFile "etc/nix/registry.json" registry}
  ''
  # The store layers already belong to the user (uid/gid below), but
  # includeNixDB leaves nix/store (with .links) in this tree too, and real
  # dockerTools tars this tree whole: a root-owned nix/store here would win
  # over the store layers' and make the store read-only for the user. So
  # everything under /nix is the user's, as in Nix's own docker.nix.
  + lib.optionalString withNix ''
    mkdir -p nix/store nix/var/nix/gcroots nix/var/nix/profiles nix/var/nix/temproots nix/var/log/nix
    chown -R ${owner} nix
  ''
  + lib.optionalString withNixLd ''
    mkdir -p .${dirOf loaderPath}
    rm -f .${loaderPath}
    ln -s ${pkgs.nix-ld}/libexec/nix-ld .${loaderPath}
  '';

  # The image ships more than the closure of `contents`: every store path
  # the config's Env names (the nixpkgs source of NIX_PATH, cacert's bundle,
  # the nix-ld loader and libraries, extraEnv's paths) and the registry's
  # nixpkgs. includeNixDB registers only the closure of `contents`, so this
  # file, in `contents`, refers to all of them: the database then holds
  # every path the image ships, and the GC root of `contents` keeps them.
  storeRoots =
    pkgs.runCommand "agent-images-store-roots"
      {
        roots = builtins.toJSON {
          inherit env;
          registry = if bundleNixpkgs then registry else null;
        };
        passAsFile = [ "roots" ];
      }
      ''
        mkdir -p $out/share/agent-images
        cp "$rootsPath" $out/share/agent-images/store-roots.json
      '';

  agentDescription = agent.meta.description or "";
  agentVersion = agent.version or (lib.getVersion agent);

  # The config holds only facts of the image's inputs: it is part of the
  # image's digest, so a label that changed with every commit (the
  # revision, the commit time) would make every commit a new image, and
  # `release` would never find one unchanged. Where the image was released
  # from, and when, is for the index (release annotates it). No source
  # either: mkAgentImage cannot know which repository builds it, and a
  # wrong one is worse than none.
  imageLabels = {
    "org.opencontainers.image.title" = name;
    "org.opencontainers.image.version" = agentVersion;
    "org.opencontainers.image.licenses" = spdxOf agent;
  }
  // lib.optionalAttrs (agentDescription != "") {
    "org.opencontainers.image.description" = agentDescription;
  }
  // labels;

  config = {
    Entrypoint = [ "agent-images-entrypoint" ] ++ entrypoint;
    User = owner;
    WorkingDir = workingDir;
    Env = lib.mapAttrsToList (k: v: "${k}=${toString v}") env;
    Labels = imageLabels;
  };

  imageArgs =
    {
      inherit
        name
        tag
        config
        fakeRootCommands
        ;
      contents = packages ++ lib.optional withNix storeRoots;
      # Registers the closure of `contents` in the image's Nix database and
      # roots it in /nix/var/nix/gcroots/docker, so Nix inside the container
      # knows the paths it ships with and nix-collect-garbage keeps them.
      includeNixDB = withNix;
    }
    // lib.optionalAttrs withNix {
      # Store layers owned by the user: single-user Nix writes to /nix/store.
      inherit uid gid;
      uname = user;
      gname = group;
    };

  image = pkgs.dockerTools.buildLayeredImage imageArgs;

  # The image description nixpkgs' stream script reads (store paths per
  # layer, config, ownership): release packs the image from it and the
  # store, the same bytes the script writes. dockerTools keeps it out of
  # passthru, but the stream script is built from it, so it is the one
  # "-conf.json" derivation its build command refers to. buildLayeredImage
  # makes the same stream from the same arguments, so this is the
  # description of `image` itself. null when nixpkgs' dockerTools no longer
  # fits that shape: release then reads the image Nix built.
  confDrvPath =
    let
      stream = pkgs.dockerTools.streamLayeredImage imageArgs;
      confs = builtins.filter (p: builtins.match ".*-conf[.]json[.]drv" p != null) (
        builtins.attrNames (builtins.getContext (stream.buildCommand or ""))
      );
    in
    if builtins.length confs == 1 then builtins.head confs else null;

  agentImage = {
    attr = baseNameOf name;
    name = lib.getName agent;
    version = agentVersion;
    description = agentDescription;
    unfree = isUnfree agent;
    license = spdxOf agent;
    mainProgram = agent.meta.mainProgram or (lib.getName agent);
    release =
      if builtins.isBool release then
        release
      else
        throw "mkAgentImage: release must be true or false, not ${builtins.toJSON release}";
    inherit
      system
      user
      uid
      gid
      home
      workingDir
      withNix
      withNixLd
      ;
    imageName = name;
    imageTag = tag;
    inherit confDrvPath;
    # The config's labels, exactly: the smoke test holds the image to them.
    labels = imageLabels;
    extraDirectories = extraDirs;
    # What release's smoke test holds the image to besides the identity
    # above: the program it runs, the environment the caller added, and the
    # commands the toolbox's packages declare as their meta.mainProgram.
    # The entrypoint is the config's, home shim included, so that the check
    # holds an image to exactly what it was built with.
    entrypoint = config.Entrypoint;
    extraEnv = lib.mapAttrs (_: toString) extraEnv;
    commands = lib.unique (
      lib.concatMap (p: lib.optional (p ? meta.mainProgram) p.meta.mainProgram) (
        extraPackages ++ basePackages
      )
    );
  };
in
builtins.deepSeq validated (
  lib.addMetaAttrs {
    description = "Container image of ${lib.getName agent}${
      lib.optionalString (agentDescription != "") ": ${agentDescription}"
    }";
  } image
  // {
    inherit agentImage;
  }
)
