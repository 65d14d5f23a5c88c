{
  description = "agent-images benchmark stand-in for nixpkgs: the test stand-in with the base toolset and runtimes at realistic sizes";

  outputs =
    { self }:
    let
      lib = import ./standin/lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs systems (system: import ./. { inherit system; });
    };
}
