{
  description = "My agent images, built with agent-images";

  # Agents come prebuilt from llm-agents' binary cache.
  nixConfig = {
    extra-substituters = [ "https://cache.numtide.com" ];
    extra-trusted-public-keys = [
      "niks3.numtide.com-1:DTx8wZduET09hRmMtKdQDxNNthLQETkc/yaX7M4qK0g="
    ];
  };

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
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    in
    {
      # Every image made with mkAgentImage is released, as
      # <registry>/<attribute>: ghcr.io/<owner>/<repo>/my-pi for this one.
      # Pass `release = false;` to keep an image out.
      packages = nixpkgs.lib.genAttrs systems (
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          mkAgentImage = agent-images.lib.mkAgentImage { inherit pkgs; };
        in
        {
          my-pi = mkAgentImage {
            name = "my-pi";
            agent = llm-agents.packages.${system}.pi;
            # More tools on PATH, next to git, ripgrep, jq, curl and the rest.
            extraPackages = [ pkgs.shellcheck ];
            extraEnv = {
              GIT_AUTHOR_NAME = "my-pi";
              GIT_AUTHOR_EMAIL = "my-pi@users.noreply.github.com";
              GIT_COMMITTER_NAME = "my-pi";
              GIT_COMMITTER_EMAIL = "my-pi@users.noreply.github.com";
            };
          };
        }
      );
    };
}
