{
  description = "agent-images stand-in for nixpkgs: just enough of lib, dockerTools and a few packages to build agent-images offline";

  outputs =
    { self }:
    let
      lib = import ./lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    in
    {
      inherit lib;
      # Like real nixpkgs: legacyPackages is the default instance (no unfree).
      legacyPackages = lib.genAttrs systems (system: import ./. { inherit system; });
    };
}
