{
  description = "Another repository's flake: one custom image to release, one kept out";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
    # llm-agents keeps its own nixpkgs: its binary cache holds the agents
    # built against that one, and some of them need it.
    llm-agents.url = "github:numtide/llm-agents.nix";
    agent-images = {
      url = "github:nothingnesses/agent-images";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.llm-agents.follows = "llm-agents";
    };
  };

  outputs =
    {
      nixpkgs,
      llm-agents,
      agent-images,
      ...
    }:
    {
      packages = nixpkgs.lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          mkAgentImage = agent-images.lib.mkAgentImage { inherit pkgs; };
          agent = llm-agents.packages.${system}.pi;
          # The image runs a wrapper, not the agent's own main program.
          review = pkgs.runCommand "review-1.0" { meta.mainProgram = "review"; } ''
            mkdir -p $out/bin
            printf '#!/bin/sh\nexec pi "$@"\n' > $out/bin/review
            chmod 0555 $out/bin/review
          '';
        in
        {
          # The attribute, not the image name, names the agent.
          reviewer = mkAgentImage {
            name = "acme/code-reviewer";
            inherit agent;
            entrypoint = [ "review" ];
            extraPackages = [
              review
              pkgs.hello
            ];
            extraEnv = {
              REVIEW_MODE = "strict";
              XDG_CONFIG_HOME = "/home/dev/.review";
            };
            extraDirectories = [
              "~/.review"
              "/opt/review-cache"
            ];
            user = "dev";
            uid = 1001;
            gid = 100;
            workingDir = "/src";
            withNixLd = true;
            # What registries show of it, besides what mkAgentImage knows.
            labels = {
              "org.opencontainers.image.vendor" = "Acme Code Review";
              "org.opencontainers.image.documentation" = "https://acme.example/docs/reviewer";
            };
          };
          scratch = mkAgentImage {
            name = "scratch";
            inherit agent;
            release = false;
          };
        }
      );
    };
}
