{
  description = "agent-images benchmark stand-in for numtide/llm-agents.nix: the test stand-in's agents at realistic sizes";

  # Same input as the real flake. The benchmark overrides it with ../nixpkgs,
  # the nixpkgs agent-images gets too, so agents and base share runtimes.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # The test stand-in's 30 agents, built against this flake's nixpkgs:
      # same programs, versions and meta.
      standin = (import ./standin/flake.nix).outputs { inherit self nixpkgs; };
      settings = builtins.fromJSON (builtins.readFile ./bench.json);

      packagesFor =
        system: agents:
        let
          pkgs = import nixpkgs {
            inherit system;
            config.allowUnfree = true;
          };
          bench = pkgs.agentImagesBench;
          # sizes.json names agents as the images do; llm-agents renamed
          # forge's package to forgecode (lib/agents.nix maps it back).
          imageOf = attr: { forgecode = "forge"; }.${attr} or attr;
          sizeOf =
            attr:
            lib.findFirst (a: a.attr == imageOf attr) (throw "agent-images bench: ${attr} is missing from sizes.json") bench.sizes.agents;
          # The agent with its own payload, its libraries (storePaths - 1 more
          # store paths) and the shared runtimes it runs on.
          grow =
            attr: agent:
            let
              size = sizeOf attr;
              # llm-agents' newer packages have no version attribute: the
              # version is only in the name.
              version = (builtins.parseDrvName agent.name).version;
            in
            builtins.head
              (bench.grow {
                part = attr;
                inherit (size) mib;
                packages = [ agent ];
                libraries = builtins.genList (i: "${attr}-${version}-lib${toString i}") (size.storePaths - 1);
                extraReferences = map (r: pkgs.${r}) size.runtimes;
                revision = settings.revisions.${imageOf attr} or 0;
              }).packages;
        in
        lib.mapAttrs grow agents;
    in
    {
      packages = lib.mapAttrs packagesFor standin.packages;
    };
}
