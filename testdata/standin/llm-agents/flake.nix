{
  description = "agent-images stand-in for numtide/llm-agents.nix at the locked revision: each agent is a tiny script that answers --version";

  # As in the real flake: llm-agents pins its own nixpkgs. Offline, the
  # caller overrides it (--override-input llm-agents/nixpkgs ...), since
  # nothing can be fetched here. The real flake's other inputs (blueprint,
  # bun2nix, flake-parts, systems, treefmt-nix) are what its outputs are
  # made with; their effect on what agent-images reads is written out below
  # (FACTS.md says where each fact was read).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      agents = import ./agents.nix;
      # nix-systems/default also lists the two darwin systems, which the
      # stand-in nixpkgs cannot instantiate and agent-images never reads.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      # The overlay the real flake passes to blueprint: bun from its
      # baseline (no AVX) build.
      bunBaselineOverlay = final: prev: {
        bun = prev.bun.overrideAttrs (old: {
          src = "bun-v${old.version}/bun-linux-x64-baseline.zip";
        });
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

      # blueprint's filterPlatforms (numtide/blueprint lib/default.nix at
      # the locked 56131e8): a package stays unless it has a non-empty
      # meta.platforms without the system. Unlike the later
      # `availableOn && !broken`, it keeps meta.broken packages and ignores
      # meta.badPlatforms.
      filterPlatforms =
        system:
        lib.filterAttrs (
          _: p: (p.meta.platforms or [ ]) == [ ] || lib.elem system p.meta.platforms
        );

      packagesFor =
        system:
        let
          # blueprint instantiates nixpkgs with the flake's nixpkgs.config
          # and overlays: allowUnfree, so nixpkgs' own unfree licence
          # (free = false) evaluates.
          pkgs = import nixpkgs {
            inherit system;
            config.allowUnfree = true;
            overlays = [ bunBaselineOverlay ];
          };

          # Licences are nixpkgs' (llm-agents' lib is nixpkgs' lib with
          # maintainers added): shortName is the attribute name (`mit`),
          # spdxId the SPDX identifier.
          meta = a: {
            inherit (a) description mainProgram;
            license = lib.licenses.${a.license};
            homepage = "https://github.com/numtide/llm-agents.nix";
          }
          // lib.optionalAttrs (a ? platforms) { inherit (a) platforms; }
          // lib.optionalAttrs (a.broken or false) { broken = true; };

          # Every package at the locked revision is made by a nixpkgs
          # builder (stdenv.mkDerivation, buildGoModule, buildNpmPackage,
          # ...): pname, version, overrideAttrs, explicit meta.mainProgram.
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
              meta = meta a;
            };
        in
        filterPlatforms system (
          lib.listToAttrs (map (a: lib.nameValuePair a.attr (mkNixpkgs a)) agents)
        );
    in
    {
      # blueprint exposes the flake's lib/ as `lib`: nixpkgs' lib, extended.
      inherit lib;
      packages = lib.genAttrs systems packagesFor;
    };
}
