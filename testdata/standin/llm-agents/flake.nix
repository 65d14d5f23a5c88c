{
  description = "agent-images stand-in for numtide/llm-agents.nix: each agent is a tiny script that answers --version";

  # Same input as the real flake; agent-images makes it follow its own nixpkgs.
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

      packagesFor =
        system:
        let
          # llm-agents instantiates nixpkgs itself, with unfree allowed.
          pkgs = import nixpkgs {
            inherit system;
            config.allowUnfree = true;
          };
          mkAgent =
            a:
            pkgs.stdenv.mkDerivation {
              pname = a.attr;
              inherit (a) version;
              buildCommand = ''
                mkdir -p $out/bin
                cat > $out/bin/${a.mainProgram} <<EOF
                #!${pkgs.busybox}/bin/sh
                case "\$1" in
                  --version|-v|version)
                    echo "${a.mainProgram} ${a.version} (agent-images stand-in for llm-agents' ${a.attr})"
                    exit 0 ;;
                esac
                echo "${a.mainProgram}: agent-images stand-in for llm-agents' ${a.attr} ${a.version}; only --version works" >&2
                exit 1
                EOF
                chmod 0555 $out/bin/${a.mainProgram}
              '';
              meta = {
                inherit (a) description mainProgram platforms;
                license = lib.licenses.${a.license};
                homepage = "https://github.com/numtide/llm-agents.nix";
              };
            };
        in
        lib.listToAttrs (
          map (a: lib.nameValuePair a.attr (mkAgent a)) (lib.filter (a: lib.elem system a.platforms) agents)
        );
    in
    {
      packages = lib.genAttrs systems packagesFor;
    };
}
