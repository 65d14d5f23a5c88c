{
  description = "Sandboxed OCI container images for AI coding agents, built reproducibly with Nix";

  # Agents come prebuilt from llm-agents' binary cache; without it every
  # image would first compile its agent.
  nixConfig = {
    extra-substituters = [ "https://cache.numtide.com" ];
    extra-trusted-public-keys = [
      "niks3.numtide.com-1:DTx8wZduET09hRmMtKdQDxNNthLQETkc/yaX7M4qK0g="
    ];
  };

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
    # No `inputs.nixpkgs.follows`: on its own nixpkgs, llm-agents' packages
    # are the store paths its binary cache holds (on ours every source-built
    # agent would compile on the runner), it keeps the toolchains it pins on
    # purpose (bun), and one of its packages failing to evaluate against our
    # nixpkgs cannot break every image.
    llm-agents.url = "github:numtide/llm-agents.nix";
  };

  outputs =
    {
      self,
      nixpkgs,
      llm-agents,
    }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      # Every agent of lib/agents.nix as { name, package, systems }.
      agents =
        let
          listed = import ./lib/agents.nix;
        in
        lib.mapAttrs (
          attr: entry:
          let
            e = if builtins.isString entry then { name = entry; } else entry;
          in
          {
            inherit (e) name;
            package = e.package or attr;
            systems = e.systems or systems;
          }
        ) (listed.codingAgents // listed.assistants);
      displayNames = lib.mapAttrs (_: a: a.name) agents;
      argumentRules = import ./lib/arguments.nix { inherit lib; };

      # Several agents are unfree; the images only repackage them.
      pkgsFor =
        system:
        import nixpkgs {
          inherit system;
          config.allowUnfree = true;
        };

      # An agent gets an image on a system only where llm-agents builds it:
      # its packages there hold it, its meta.platforms (if any) lists the
      # system, and it is not marked broken. llm-agents' own filter differs
      # by revision (blueprint's keeps broken packages, which nixpkgs then
      # refuses to build; later ones drop them), so the flake checks all
      # three itself rather than fail to evaluate on a broken one.
      agentFor =
        system: attr:
        let
          agent = (llm-agents.packages.${system} or { }).${agents.${attr}.package} or null;
        in
        if
          agent != null
          && (!(agent.meta ? platforms) || lib.elem system agent.meta.platforms)
          && !(agent.meta.broken or false)
        then
          agent
        else
          null;

      # The agents of lib/agents.nix that llm-agents does not provide on a
      # system they are expected on, each with its package and why it is
      # missing: { <attr> = { package, reason }; }.
      missingAgentsOn =
        system:
        lib.mapAttrs
          (
            attr: a:
            let
              elsewhere = lib.filter (
                s: s != system && (llm-agents.packages.${s} or { }) ? ${a.package}
              ) systems;
              platformsThere = (builtins.head (map (s: llm-agents.packages.${s}.${a.package}) elsewhere)).meta.platforms or null;
              here = (llm-agents.packages.${system} or { }).${a.package} or null;
            in
            {
              inherit (a) package;
              reason =
                if here != null && (here.meta.broken or false) then
                  "llm-agents marks ${a.package} as broken on ${system} (meta.broken), so it cannot be built there; it comes back when llm-agents fixes it"
                else
                  "llm-agents' packages.${system} has no ${a.package}, which lib/agents.nix expects on ${lib.concatStringsSep " and " a.systems}"
                + lib.optionalString (
                  elsewhere != [ ] && platformsThere != null && !(lib.elem system platformsThere)
                ) "; its meta.platforms on ${builtins.head elsewhere} leaves ${system} out: if llm-agents dropped it on purpose, remove ${system} from the agent's systems in lib/agents.nix"
                + lib.optionalString (elsewhere == [ ]) " (it is on no system: renamed or dropped? set `package` in lib/agents.nix to its new name, or remove the agent)";
            }
          )
          (lib.filterAttrs (attr: a: lib.elem system a.systems && agentFor system attr == null) agents);

      # Gives an image its display name and search description.
      # agentImage is attached last: addMetaAttrs may rebuild the derivation
      # through overrideAttrs, which would drop attributes added before it.
      finish =
        {
          attr,
          name,
        }:
        image:
        let
          info = image.agentImage // {
            inherit attr name;
          };
        in
        lib.addMetaAttrs {
          description = "${name} ${info.version} in a container image${
            lib.optionalString (info.description != "") ": ${info.description}"
          }";
        } (removeAttrs image [ "agentImage" ])
        // {
          agentImage = info;
        };

      releaseImages =
        system: pkgs:
        let
          mkAgentImage = self.lib.mkAgentImage { inherit pkgs; };
          build =
            attr: agent:
            finish {
              inherit attr;
              name = displayNames.${attr};
            } (mkAgentImage {
              name = "agent-images/${attr}";
              inherit agent;
              entrypoint = [ agent.meta.mainProgram ];
            });
          present = lib.filterAttrs (attr: _: agentFor system attr != null) displayNames;
        in
        lib.mapAttrs (attr: _: build attr (agentFor system attr)) present;

      # The images the smoke tests run: one per option family of mkAgentImage.
      testImages =
        system: pkgs:
        let
          mkAgentImage = self.lib.mkAgentImage { inherit pkgs; };
          agent = agentFor system "opencode";
          test =
            attr: args:
            finish {
              inherit attr;
              name = "Test image ${attr}";
            } (
              mkAgentImage (
                {
                  name = "agent-images/${attr}";
                  inherit agent;
                  # The test images check mkAgentImage's options; they are not published.
                  release = false;
                }
                // args
              )
            );
        in
        lib.optionalAttrs (agent != null) {
          test-nix = test "test-nix" { withNix = true; };
          test-nix-custom = test "test-nix-custom" {
            withNix = true;
            withNixLd = true;
            user = "nixer";
            uid = 1001;
            gid = 100;
            nixExperimentalFeatures = [
              "nix-command"
              "flakes"
              "pipe-operators"
            ];
            extraEnv.CUSTOM_VAR = "nix-custom-value";
          };
          test-nix-ld = test "test-nix-ld" { withNixLd = true; };
          test-nix-ld-minimal = test "test-nix-ld-minimal" {
            withNixLd = true;
            nixLdLibraries = with pkgs; [
              zlib
              openssl
            ];
          };
          test-minimal = test "test-minimal" {
            basePackages = with pkgs; [
              bashInteractive
              coreutils
              cacert
            ];
          };
          # A toolbox without cacert: SSL_CERT_FILE must still name a bundle.
          test-bare = test "test-bare" {
            basePackages = with pkgs; [
              bashInteractive
              coreutils
            ];
          };
          test-custom = test "test-custom" {
            user = "dev";
            uid = 1002;
            gid = 100;
            workingDir = "/project";
            # getent is linked against glibc dynamically: a uid the image
            # does not name must be found by it as by static programs.
            extraPackages = [
              pkgs.hello
              pkgs.getent
            ];
            extraEnv = {
              CUSTOM_VAR = "custom-value";
              XDG_CONFIG_HOME = "/home/dev/.custom-config";
            };
            extraDirectories = [
              "~"
              "~/.dev-cache"
              "~/.custom-config"
              "~/.my+app@v2"
              "/opt/dev-cache"
            ];
          };
        };

      # mkAgentImage must refuse bad arguments while evaluating, with an
      # error that names the argument, the value (but for an environment
      # value, which may be a secret and must not be printed) and the rule;
      # `..` and `//` must be refused as such, not because the path they
      # lead to happens to be a system path. Each case is the arguments
      # given, the argument and value the error names, and the rule.
      argumentsCheck =
        pkgs:
        let
          mkAgentImage = self.lib.mkAgentImage { inherit pkgs; };
          agent = pkgs.hello;
          directory = dir: rule: {
            args.extraDirectories = [ dir ];
            argument = "extraDirectories entry";
            kind = "directory";
            value = dir;
            inherit rule;
          };
          # A bad label name is reported as the key, a bad value under its name.
          label = key: value: kind: rule: {
            args.labels.${key} = value;
            argument = if kind == "label-key" then "labels key" else "labels.${builtins.toJSON key}";
            inherit kind rule;
            value = if kind == "label-key" then key else value;
          };
          one = argument: kind: value: rule: {
            args.${argument} = value;
            inherit
              argument
              kind
              value
              rule
              ;
          };
          # A bad variable name is reported as the name, a bad value under
          # its name (and not printed).
          envName = key: {
            args.extraEnv.${key} = "x";
            argument = "extraEnv name";
            kind = "env-name";
            value = key;
            rule = "env-name";
          };
          envValue = value: {
            args.extraEnv.FOO = value;
            argument = "extraEnv.\"FOO\"";
            kind = "env-value";
            inherit value;
            rule = "control-character";
          };
          feature = value: rule: {
            args.nixExperimentalFeatures = [
              "nix-command"
              value
            ];
            argument = "nixExperimentalFeatures entry";
            kind = "feature";
            inherit value rule;
          };
          # A character no rule lets through: DEL.
          del = builtins.fromJSON ''"\u007f"'';
          rejected = [
            (directory "relative/path" "absolute")
            (directory "/etc/shadow" "system-path")
            (directory "/var/data" "system-path")
            (directory "/nix/../etc" "dotdot")
            (directory "/foo bar" "characters")
            (directory "/etc" "system-path")
            (directory "/opt/../etc" "dotdot")
            (directory "//etc" "normalised")
            (directory "/./etc" "normalised")
            (directory "/." "normalised")
            (directory "//nix/store" "normalised")
            (directory "/opt/cache/" "normalised")
            (directory "~/" "normalised")
            (directory "/" "root")
            (directory "/lib64" "system-path")
            (directory "/lib64/ld-linux-x86-64.so.2" "system-path")
            (directory "/home" "home")
            (directory "/home/other" "home")
            (directory "/home/agent2" "home")
            (one "workingDir" "workingDir" "/" "root")
            (one "workingDir" "workingDir" "workspace" "absolute")
            (one "workingDir" "workingDir" "~/src" "absolute")
            (one "workingDir" "workingDir" "//etc" "normalised")
            (one "workingDir" "workingDir" "/usr/src" "system-path")
            (one "workingDir" "workingDir" "/home" "home")
            (one "user" "user" "../etc" "user-name")
            (one "user" "user" "x:0:0::/root:/bin/sh\n" "user-name")
            (one "user" "user" "Agent" "user-name")
            (one "user" "user" (lib.concatStrings (lib.genList (_: "a") 33)) "user-name")
            (one "user" "user" "root" "reserved")
            (one "user" "user" "nobody" "reserved")
            (one "uid" "uid" "0" "integer")
            (one "uid" "uid" 0 "root")
            (one "uid" "uid" (-1) "range")
            (one "uid" "uid" 65534 "taken")
            (one "gid" "gid" "100" "integer")
            (one "gid" "gid" 0 "root")
            (one "gid" "gid" (-1) "range")
            (one "gid" "gid" 65534 "taken")
            (one "extraEnv" "extraEnv" [ "FOO=bar" ] "attrset")
            (envName "FOO=bar")
            (envName "FOO\nBAR")
            (envName "1FOO")
            (envName "FOO-BAR")
            (envName "")
            (envValue "a\nBAR=b")
            (envValue "a\rb")
            (envValue "a${del}")
            (one "nixExperimentalFeatures" "nixExperimentalFeatures" "nix-command flakes" "list")
            (feature "flakes\nallowed-uris = *" "feature-name")
            (feature "flakes allowed-uris" "feature-name")
            (feature "Flakes" "feature-name")
            (feature 42 "string")
            (one "tag" "tag" "../../x" "oci-tag")
            (one "tag" "tag" "1.0:x" "oci-tag")
            (one "tag" "tag" "latest\nx" "oci-tag")
            (one "tag" "tag" ".hidden" "oci-tag")
            (one "tag" "tag" "" "oci-tag")
            (one "tag" "tag" (lib.concatStrings (lib.genList (_: "a") 129)) "oci-tag")
            (one "tag" "tag" 1 "string")
            (one "name" "name" "agent-images/pi:latest" "image-name")
            (one "name" "name" "pi\nx" "image-name")
            (one "name" "name" "Agent-Images/pi" "image-name")
            (one "name" "name" "/pi" "image-name")
            (one "name" "name" "agent-images//pi" "image-name")
            (one "name" "name" "../pi" "image-name")
            (one "name" "name" "" "image-name")
            (one "name" "name" (lib.concatStrings (lib.genList (_: "a") 256)) "image-name")
            (one "labels" "labels" [ "org.opencontainers.image.vendor=Acme" ] "attrset")
            (label "org.opencontainers.image.created" "2026-01-01T00:00:00Z" "label-key" "per-release")
            (label "org.opencontainers.image.revision" "0123456" "label-key" "per-release")
            (label "vendor name" "Acme" "label-key" "label-name")
            (label "org.opencontainers.image.vendor" 42 "label-value" "string")
          ];
          accepted = [
            {
              args.extraDirectories = [
                "~"
                "~/.my+app@v2"
                "/opt/dev-cache"
              ];
              field = "extraDirectories";
              want = [
                "/home/agent"
                "/home/agent/.my+app@v2"
                "/opt/dev-cache"
              ];
            }
            # Under /home, the user's home is the user's, however written.
            {
              args = {
                user = "dev";
                extraDirectories = [
                  "/home/dev"
                  "/home/dev/.cache"
                  "~/.config/app"
                ];
              };
              field = "extraDirectories";
              want = [
                "/home/dev"
                "/home/dev/.cache"
                "/home/dev/.config/app"
              ];
            }
            # Names of either case, values with a tab, a path or a package.
            {
              args.extraEnv = {
                _private = "a\tb";
                GIT_AUTHOR_NAME = "A. N. Other <a@example.org>";
                TOOL = pkgs.hello;
              };
              field = "extraEnv";
              want = {
                _private = "a\tb";
                GIT_AUTHOR_NAME = "A. N. Other <a@example.org>";
                TOOL = "${pkgs.hello}";
              };
            }
            {
              args = {
                name = "ghcr.io/acme-corp/code__reviewer";
                tag = "v1.2_3-rc.1";
              };
              field = "imageTag";
              want = "v1.2_3-rc.1";
            }
            {
              args = {
                withNix = true;
                nixExperimentalFeatures = [
                  "nix-command"
                  "flakes"
                  "pipe-operators"
                ];
              };
              field = "withNix";
              want = true;
            }
            {
              args = {
                gid = 0;
                allowRoot = true;
              };
              field = "gid";
              want = 0;
            }
            {
              args = {
                user = "dev_1-x";
                uid = 1001;
                gid = 100;
                workingDir = "/home/dev_1-x/src";
              };
              field = "workingDir";
              want = "/home/dev_1-x/src";
            }
            {
              args = {
                uid = 0;
                gid = 0;
                allowRoot = true;
              };
              field = "home";
              want = "/root";
            }
            {
              args = {
                user = "root";
                uid = 0;
                allowRoot = true;
              };
              field = "user";
              want = "root";
            }
            # A label over the defaults, and one replacing a default.
            {
              args.labels = {
                "org.opencontainers.image.vendor" = "Acme";
                "org.opencontainers.image.title" = "Checker";
              };
              field = "labels";
              want = {
                "org.opencontainers.image.vendor" = "Acme";
                "org.opencontainers.image.title" = "Checker";
                "org.opencontainers.image.version" = agent.version or (lib.getVersion agent);
                "org.opencontainers.image.licenses" = (imageWith { }).agentImage.license;
              }
              // lib.optionalAttrs ((agent.meta.description or "") != "") {
                "org.opencontainers.image.description" = agent.meta.description;
              };
            }
          ];
          imageWith =
            args:
            mkAgentImage (
              {
                name = "arguments-check";
                inherit agent;
              }
              // args
            );
          evaluates = args: (builtins.tryEval (imageWith args).drvPath).success;
          show = c: "${c.argument} ${builtins.toJSON c.value}";
          contextOf = c: {
            uid = c.args.uid or 1000;
            allowRoot = c.args.allowRoot or false;
            user = c.args.user or "agent";
          };
          ruleOf = c: argumentRules.brokenRule (contextOf c) c.kind c.value;
          # The report lists every case, even one no rule refuses (then a
          # problem too).
          messageOf =
            c:
            if ruleOf c == null then
              "no rule refuses it"
            else
              argumentRules.errorMessage c.kind c.argument c.value (ruleOf c);
          printed = c: !(lib.elem c.kind argumentRules.unprintedKinds);
          rejectionProblems =
            c:
            let
              rule = ruleOf c;
              message = messageOf c;
            in
            if rule == null then
              [ "${show c}: accepted by the rules, want rule ${c.rule}" ]
            else
              lib.optional (rule.name != c.rule) "${show c}: broke rule ${rule.name}, want ${c.rule}"
              ++ lib.optional (
                !(lib.all (part: lib.hasInfix part message) (
                  [
                    c.argument
                    rule.text
                    "(rule: ${rule.name})"
                  ]
                  ++ lib.optional (printed c) (builtins.toJSON c.value)
                ))
              ) "${show c}: error message does not name the argument, the value and the rule: ${message}"
              ++ lib.optional (
                !(printed c) && lib.hasInfix (builtins.toJSON c.value) message
              ) "${c.argument}: error message prints the value: ${message}"
              ++ lib.optional (evaluates c.args) "${show c}: mkAgentImage evaluated an image with it";
          acceptanceProblems =
            c:
            if !(evaluates c.args) then
              [ "${builtins.toJSON c.args}: mkAgentImage failed to evaluate" ]
            else
              lib.optional ((imageWith c.args).agentImage.${c.field} != c.want)
                "${builtins.toJSON c.args}: ${c.field} is ${builtins.toJSON (imageWith c.args).agentImage.${c.field}}, want ${builtins.toJSON c.want}";
          problems = lib.concatMap rejectionProblems rejected ++ lib.concatMap acceptanceProblems accepted;
          report = lib.concatStringsSep "\n" (
            map (c: "rejected ${if printed c then show c else c.argument}: ${messageOf c}") rejected
            ++ map (c: "accepted ${builtins.toJSON c.args}") accepted
          );
        in
        pkgs.runCommand "arguments-check"
          {
            problems = lib.concatStringsSep "\n" problems;
            inherit report;
          }
          ''
            if [ -n "$problems" ]; then
              echo "mkAgentImage argument validation is wrong:" >&2
              echo "$problems" >&2
              exit 1
            fi
            echo "$report" | tee $out
          '';

      # A check that fails listing problems, one a line, or passes saying so.
      problemsCheck =
        pkgs: name: problems: passed:
        pkgs.runCommand name { problems = lib.concatStringsSep "\n" problems; } ''
          if [ -n "$problems" ]; then
            echo "$problems" >&2
            exit 1
          fi
          echo ${lib.escapeShellArg passed} | tee $out
        '';

      # What mkAgentImage reads from an agent (version, name, main program,
      # licence, description) for each shape of package llm-agents has made:
      # nixpkgs builders (pname, version, overrideAttrs; every agent at the
      # locked revision), and its own builders after it (corepkgs'
      # mkPackage, mkGo, mkCargo, mkPython: a bare derivation whose version
      # is only in its name, or absent, some with structured attrs). The
      # image must evaluate for each; nothing is built.
      agentShapesCheck =
        pkgs:
        let
          mkAgentImage = self.lib.mkAgentImage { inherit pkgs; };
          meta = {
            description = "A shape of agent";
            mainProgram = "shape";
            license = lib.licenses.mit;
            platforms = [ pkgs.stdenv.hostPlatform.system ];
          };
          bare =
            name: extra:
            derivation (
              {
                inherit name;
                inherit (pkgs.stdenv.hostPlatform) system;
                builder = "/bin/sh";
                args = [
                  "-c"
                  "echo > $out"
                ];
              }
              // extra
            )
            // {
              inherit meta;
              passthru.category = "AI Coding Agents";
            };
          cases = [
            {
              shape = "nixpkgs builder";
              agent = pkgs.stdenv.mkDerivation {
                pname = "shape";
                version = "1.2.3";
                buildCommand = "echo > $out";
                inherit meta;
              };
              version = "1.2.3";
            }
            {
              shape = "bare derivation, version in the name";
              agent = bare "shape-1.2.3" { };
              version = "1.2.3";
            }
            {
              shape = "bare derivation with structured attrs";
              agent = bare "shape-1.2.3" { __structuredAttrs = true; };
              version = "1.2.3";
            }
            {
              shape = "bare derivation without a version";
              agent = bare "shape" { };
              version = "";
            }
          ];
          problems = lib.concatMap (
            c:
            let
              image = mkAgentImage {
                name = "agent-shapes-check";
                inherit (c) agent;
              };
              got = image.agentImage;
              want = {
                name = "shape";
                inherit (c) version;
                mainProgram = "shape";
                license = "MIT";
                unfree = false;
                description = "A shape of agent";
              };
            in
            lib.optional (
              !(builtins.tryEval image.drvPath).success
            ) "${c.shape}: the image does not evaluate"
            ++ lib.optional (
              builtins.intersectAttrs want got != want
            ) "${c.shape}: agentImage has ${builtins.toJSON (builtins.intersectAttrs want got)}, want ${builtins.toJSON want}"
          ) cases;
        in
        problemsCheck pkgs "agent-shapes-check" problems
          "${toString (builtins.length cases)} shapes of agent package make images";

      # An image's `unfree` and `license` for each shape of licence an agent
      # comes with: nixpkgs' (unfree says free = false) and llm-agents' own
      # (its unfree licence says free = true; only shortName tells).
      licensesCheck =
        pkgs:
        let
          mkAgentImage = self.lib.mkAgentImage { inherit pkgs; };
          l = lib.licenses;
          llmAgentsUnfree = {
            shortName = "unfree";
            fullName = "Unfree";
            free = true;
            redistributable = false;
          };
          cases = [
            {
              license = l.mit;
              unfree = false;
              spdx = "MIT";
            }
            {
              license = [
                l.mit
                l.asl20
              ];
              unfree = false;
              spdx = "MIT AND Apache-2.0";
            }
            {
              license = l.unfree;
              unfree = true;
              spdx = "LicenseRef-unfree";
            }
            {
              license = l.unfreeRedistributable;
              unfree = true;
              spdx = "LicenseRef-unfree";
            }
            {
              license = llmAgentsUnfree;
              unfree = true;
              spdx = "LicenseRef-unfree";
            }
            {
              license = [
                l.mit
                llmAgentsUnfree
              ];
              unfree = true;
              spdx = "MIT AND LicenseRef-unfree";
            }
            {
              license = {
                shortName = "custom";
                free = true;
              };
              unfree = false;
              spdx = "LicenseRef-custom";
            }
            {
              license = null;
              unfree = false;
              spdx = "NOASSERTION";
            }
          ];
          imageOf =
            c:
            (mkAgentImage {
              name = "licenses-check";
              agent = pkgs.hello // {
                meta = removeAttrs pkgs.hello.meta [ "license" ] // lib.optionalAttrs (c.license != null) {
                  inherit (c) license;
                };
              };
            }).agentImage;
          problems = lib.concatMap (
            c:
            let
              got = imageOf c;
            in
            lib.optional (got.unfree != c.unfree || got.license != c.spdx)
              "licence ${builtins.toJSON c.license}: unfree = ${lib.boolToString got.unfree}, license = ${got.license}; want ${lib.boolToString c.unfree}, ${c.spdx}"
          ) cases;
        in
        problemsCheck pkgs "licenses-check" problems
          "${toString (builtins.length cases)} licence shapes read as expected";

      # `nix fmt` runs the formatter in the user's checkout with no arguments
      # (since Nix 2.25; earlier it passed "."), stdin left as it is: the
      # formatter must then format the tree and finish on its own, not wait
      # for stdin as nixfmt does. stdin here is a pipe that never ends.
      formatterCheck =
        system: pkgs:
        let
          formatter = self.formatter.${system};
        in
        pkgs.runCommand "formatter-check" { nativeBuildInputs = [ pkgs.git ]; } ''
          export HOME=$PWD/home
          mkdir -p $HOME tree
          cd tree
          # A git checkout, as `nix fmt` runs in (the offline git stand-in
          # only answers --version, so a bare .git stands in for it).
          git init -q 2>/dev/null || mkdir .git
          printf 'let to = "be formatted"; in to\n' > a.nix
          git add a.nix 2>/dev/null || true
          cp a.nix ../unformatted.nix
          mkfifo ../stdin
          exec 3<>../stdin
          status=0
          timeout 300 ${lib.getExe formatter} <../stdin >../log 2>&1 || status=$?
          cat ../log
          if [ "$status" = 124 ]; then
            echo "${lib.getExe formatter} with no arguments did not finish: it waits on stdin, so nix fmt hangs" >&2
            exit 1
          elif [ "$status" != 0 ]; then
            echo "${lib.getExe formatter} with no arguments failed (exit $status)" >&2
            exit 1
          fi
          if cmp -s a.nix ../unformatted.nix && ! grep -q "agent-images stand-in" ../log; then
            echo "${lib.getExe formatter} with no arguments left a.nix unformatted" >&2
            exit 1
          fi
          echo "nix fmt's formatter formats the tree without arguments" | tee $out
        '';

      # Fails, naming each, while an agent of lib/agents.nix is missing from
      # llm-agents on a system it is expected on; every system's check
      # reports every system, so one runner's `nix flake check` sees them all.
      agentsCheck =
        pkgs:
        let
          missing = lib.concatLists (
            lib.mapAttrsToList (
              system: bySystem:
              lib.mapAttrsToList (attr: m: "${attr} on ${system} (package ${m.package}): ${m.reason}") bySystem
            ) self.missingAgents
          );
        in
        pkgs.runCommand "agents-check" { missing = lib.concatStringsSep "\n" missing; } ''
          if [ -n "$missing" ]; then
            echo "agents listed in lib/agents.nix that llm-agents does not provide:" >&2
            echo "$missing" >&2
            exit 1
          fi
          echo "llm-agents provides every agent of lib/agents.nix where it is expected" | tee $out
        '';

      # The release tool reads exactly these fields in one nix eval.
      releaseMetadataCheck =
        system: pkgs:
        let
          fields = [
            "attr"
            "commands"
            "confDrvPath"
            "description"
            "entrypoint"
            "extraDirectories"
            "extraEnv"
            "gid"
            "home"
            "imageName"
            "imageTag"
            "labels"
            "license"
            "mainProgram"
            "name"
            "release"
            "system"
            "uid"
            "unfree"
            "user"
            "version"
            "withNix"
            "withNixLd"
            "workingDir"
          ];
          images = self.packages.${system};
          problems = lib.concatLists (
            lib.mapAttrsToList (
              attr: image:
              lib.optional (
                lib.attrNames image.agentImage != fields
              ) "${attr}: agentImage has fields ${toString (lib.attrNames image.agentImage)}"
              ++ lib.optional (
                image.agentImage.release != (displayNames ? ${attr})
              ) "${attr}: release flag is ${lib.boolToString image.agentImage.release}"
              ++ lib.optional (image.agentImage.system != system) "${attr}: system is ${image.agentImage.system}"
              # Without it release cannot pack the image from the store and
              # reads the archive Nix built: nixpkgs' dockerTools changed shape.
              ++ lib.optional (
                image.agentImage.confDrvPath == null
              ) "${attr}: no conf.json derivation found for the image (lib/mkAgentImage.nix confDrvPath)"
            ) images
          );
        in
        problemsCheck pkgs "release-metadata-check" problems
          "${toString (builtins.length (lib.attrNames images))} images carry complete agentImage metadata";
    in
    {
      lib.mkAgentImage = import ./lib/mkAgentImage.nix;

      # nix flake init -t github:nothingnesses/agent-images
      templates.default = {
        path = ./templates/default;
        description = "A flake of your own agent images, released signed to GHCR by a GitHub workflow";
        welcomeText = ''
          # Your agent images

          - `flake.nix`: `packages.<system>.my-pi`, an image of llm-agents' pi with more
            tools and environment. Rename it, change it, add more.
          - `.github/workflows/agent-images.yml`: releases every image to
            `ghcr.io/<owner>/<repo>/<package>`, signed keyless, nightly and on v* tags.

          Build one here: `nix build .#my-pi && podman load < result`.
          Commit flake.lock (`nix flake lock`) with the rest.
        '';
      };

      # Per system, the agents of lib/agents.nix that llm-agents no longer
      # provides there ({ <attr> = { package, reason }; }): `release matrix`
      # reports them, and checks.<system>.agents fails on them.
      missingAgents = lib.genAttrs systems missingAgentsOn;

      packages = lib.genAttrs systems (
        system:
        let
          pkgs = pkgsFor system;
        in
        releaseImages system pkgs // testImages system pkgs
      );

      checks = lib.genAttrs systems (
        system:
        let
          pkgs = pkgsFor system;
        in
        {
          agents = agentsCheck pkgs;
          arguments = argumentsCheck pkgs;
          licenses = licensesCheck pkgs;
          agent-shapes = agentShapesCheck pkgs;
          formatter = formatterCheck system pkgs;
          release-metadata = releaseMetadataCheck system pkgs;
        }
      );

      # `nix fmt` runs the formatter with no arguments (since Nix 2.25), on
      # which nixfmt would read stdin; the tree formatter formats the tree.
      formatter = lib.genAttrs systems (system: (pkgsFor system).nixfmt-tree);

      devShells = lib.genAttrs systems (
        system:
        let
          pkgs = pkgsFor system;
        in
        {
          default = pkgs.mkShell {
            packages = with pkgs; [
              go
              nixfmt
              actionlint
              shellcheck
              podman
              skopeo
              jq
              git
            ];
          };
        }
      );
    };
}
