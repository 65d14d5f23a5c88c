{
  description = "A release set in which one image runs as root: the smoke stage must stop it";

  inputs.agent-images.url = "github:nothingnesses/agent-images";

  outputs =
    { agent-images, ... }:
    let
      inherit (agent-images.inputs) nixpkgs llm-agents;
    in
    {
      packages = builtins.mapAttrs (
        system: images:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          mkAgentImage = agent-images.lib.mkAgentImage { inherit pkgs; };
          agent = llm-agents.packages.${system}.opencode;
          rooted = mkAgentImage {
            name = "agent-images/rooted";
            inherit agent;
            entrypoint = [ agent.meta.mainProgram ];
            user = "root";
            uid = 0;
            # mkAgentImage refuses uid 0 without it.
            allowRoot = true;
          };
        in
        {
          inherit (images) pi codex;
          rooted = rooted // {
            agentImage = rooted.agentImage // {
              attr = "rooted";
              name = "Rooted";
              release = true;
            };
          };
        }
      ) agent-images.packages;
    };
}
