{
  description = "agent-images stand-in for numtide/llm-agents.nix: each agent is a tiny script that answers --version";

  # As in the real flake: llm-agents pins its own nixpkgs. Offline, the
  # caller overrides it (--override-input llm-agents/nixpkgs ...), since
  # nothing can be fetched here.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      agents = import ./agents.nix;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      # llm-agents' own licences (its flake.lib.licenses): the free ones are
      # nixpkgs', but `unfree` says free = true, so that nixpkgs evaluates
      # the unfree agents without allowUnfree; only shortName tells.
      licenses = lib.licenses // {
        unfree = {
          shortName = "unfree";
          fullName = "Unfree";
          free = true;
          redistributable = false;
          deprecated = false;
        };
      };

      # What every stand-in agent runs: answers --version, says what it is.
      script = pkgs: a: ''
        #!${pkgs.busybox}/bin/sh
        case "$1" in
          --version|-v|version)
            echo "${a.mainProgram} ${a.version} (agent-images stand-in for llm-agents' ${a.attr})"
            exit 0 ;;
        esac
        echo "${a.mainProgram}: agent-images stand-in for llm-agents' ${a.attr} ${a.version}; only --version works" >&2
        exit 1
      '';

      packagesFor =
        system:
        let
          # llm-agents instantiates its nixpkgs itself, without allowUnfree.
          pkgs = import nixpkgs { inherit system; };

          meta = a: {
            inherit (a) description;
            license = licenses.${a.license};
            homepage = "https://github.com/numtide/llm-agents.nix";
          };

          # The newer shape (corepkgs/mk/package.nix): a bare derivation with
          # no overrideAttrs and no `version` attribute (the version is only
          # in the name), meta.mainProgram defaulting to the pname, and
          # meta.platforms from its per-system download table.
          mkPackage =
            a:
            derivation {
              name = "${a.attr}-${a.version}";
              inherit system;
              pname = a.attr;
              inherit (a) mainProgram;
              builder = "${pkgs.busybox}/bin/sh";
              args = [
                "-c"
                ''
                  ${pkgs.busybox}/bin/busybox mkdir -p $out/bin
                  ${pkgs.busybox}/bin/busybox cat > $out/bin/${a.mainProgram} <<'EOF'
                  ${script pkgs a}
                  EOF
                  ${pkgs.busybox}/bin/busybox chmod 0555 $out/bin/${a.mainProgram}
                ''
              ];
            }
            // {
              meta = {
                platforms = a.platforms ++ [ "aarch64-darwin" ];
                mainProgram = a.attr;
              }
              // meta a
              // lib.optionalAttrs (a.mainProgram != a.attr) { inherit (a) mainProgram; };
              passthru.category = "AI Coding Agents";
            };

          # The classic shape: nixpkgs' stdenv.mkDerivation, with pname,
          # version, overrideAttrs and an explicit meta.mainProgram.
          mkNixpkgs =
            a:
            pkgs.stdenv.mkDerivation {
              pname = a.attr;
              inherit (a) version;
              buildCommand = ''
                mkdir -p $out/bin
                cat > $out/bin/${a.mainProgram} <<'EOF'
                ${script pkgs a}
                EOF
                chmod 0555 $out/bin/${a.mainProgram}
              '';
              meta = meta a // {
                inherit (a) mainProgram platforms;
              };
            };

          all = lib.listToAttrs (
            map (
              a: lib.nameValuePair a.attr (if a.builder == "mkPackage" then mkPackage a else mkNixpkgs a)
            ) agents
          );
        in
        # As the real flake: only what is available on the system.
        lib.filterAttrs (_: lib.meta.availableOn pkgs.stdenv.hostPlatform) all;
    in
    {
      lib = { inherit licenses; };
      packages = lib.genAttrs systems packagesFor;
    };
}
