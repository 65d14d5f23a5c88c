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
    llm-agents = {
      url = "github:numtide/llm-agents.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
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

      agents = import ./lib/agents.nix;
      displayNames = agents.codingAgents // agents.assistants;
      extraDirectoryRules = import ./lib/extra-directories.nix { inherit lib; };

      # Several agents are unfree; the images only repackage them.
      pkgsFor =
        system:
        import nixpkgs {
          inherit system;
          config.allowUnfree = true;
        };

      # An agent gets an image on a system only where llm-agents builds it.
      agentFor =
        system: attr:
        let
          agent = (llm-agents.packages.${system} or { }).${attr} or null;
        in
        if agent != null && (!(agent.meta ? platforms) || lib.elem system agent.meta.platforms) then
          agent
        else
          null;

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
          test-custom = test "test-custom" {
            user = "dev";
            uid = 1002;
            gid = 100;
            workingDir = "/project";
            extraPackages = [ pkgs.hello ];
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

      # extraDirectories must be refused while evaluating, with an error that
      # names the entry and the rule; `..` must be refused as such, not
      # because the path it leads to happens to be a system path.
      extraDirectoriesCheck =
        pkgs:
        let
          mkAgentImage = self.lib.mkAgentImage { inherit pkgs; };
          agent = pkgs.hello;
          rejected = {
            "relative/path" = "absolute";
            "/etc/shadow" = "system-path";
            "/var/data" = "system-path";
            "/nix/../etc" = "dotdot";
            "/foo bar" = "characters";
            "/etc" = "system-path";
            "/opt/../etc" = "dotdot";
          };
          accepted = {
            "~" = "/home/agent";
            "~/.my+app@v2" = "/home/agent/.my+app@v2";
            "/opt/dev-cache" = "/opt/dev-cache";
          };
          imageWith =
            dir:
            mkAgentImage {
              name = "extra-directories-check";
              inherit agent;
              extraDirectories = [ dir ];
            };
          evaluates = dir: (builtins.tryEval (imageWith dir).drvPath).success;
          rejectionProblems =
            dir: want:
            let
              rule = extraDirectoryRules.brokenRule dir;
              message = extraDirectoryRules.errorMessage dir rule;
            in
            if rule == null then
              [ "${dir}: accepted by the rules, want rule ${want}" ]
            else
              lib.optional (rule.name != want) "${dir}: broke rule ${rule.name}, want ${want}"
              ++ lib.optional (
                !(lib.hasInfix (builtins.toJSON dir) message && lib.hasInfix rule.text message)
              ) "${dir}: error message does not name the path and the rule: ${message}"
              ++ lib.optional (evaluates dir) "${dir}: mkAgentImage evaluated an image with it";
          acceptanceProblems =
            dir: want:
            let
              rule = extraDirectoryRules.brokenRule dir;
            in
            if rule != null then
              [ "${dir}: rejected by rule ${rule.name}" ]
            else if !(evaluates dir) then
              [ "${dir}: mkAgentImage failed to evaluate" ]
            else
              lib.optional (
                (imageWith dir).agentImage.extraDirectories != [ want ]
              ) "${dir}: expanded to ${builtins.toJSON (imageWith dir).agentImage.extraDirectories}, want ${want}";
          problems =
            lib.concatLists (lib.mapAttrsToList rejectionProblems rejected)
            ++ lib.concatLists (lib.mapAttrsToList acceptanceProblems accepted);
          report = lib.concatStringsSep "\n" (
            lib.mapAttrsToList (
              dir: _:
              "rejected ${builtins.toJSON dir}: ${
                extraDirectoryRules.errorMessage dir (extraDirectoryRules.brokenRule dir)
              }"
            ) rejected
            ++ lib.mapAttrsToList (dir: want: "accepted ${builtins.toJSON dir} as ${want}") accepted
          );
        in
        pkgs.runCommand "extra-directories-check"
          {
            problems = lib.concatStringsSep "\n" problems;
            inherit report;
          }
          ''
            if [ -n "$problems" ]; then
              echo "extraDirectories validation is wrong:" >&2
              echo "$problems" >&2
              exit 1
            fi
            echo "$report" | tee $out
          '';

      # The release tool reads exactly these fields in one nix eval.
      releaseMetadataCheck =
        system: pkgs:
        let
          fields = [
            "attr"
            "commands"
            "description"
            "entrypoint"
            "extraDirectories"
            "extraEnv"
            "gid"
            "home"
            "imageName"
            "imageTag"
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
            ) images
          );
        in
        pkgs.runCommand "release-metadata-check" { problems = lib.concatStringsSep "\n" problems; } ''
          if [ -n "$problems" ]; then
            echo "$problems" >&2
            exit 1
          fi
          echo "${toString (builtins.length (lib.attrNames images))} images carry complete agentImage metadata" | tee $out
        '';
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
          extra-directories = extraDirectoriesCheck pkgs;
          release-metadata = releaseMetadataCheck system pkgs;
        }
      );

      formatter = lib.genAttrs systems (system: (pkgsFor system).nixfmt);

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
