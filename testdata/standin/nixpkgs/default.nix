# `import nixpkgs { system = ...; config = ...; }` as with real nixpkgs. The
# arguments are those of nixpkgs' pkgs/top-level/impure.nix that this
# stand-in can honour; cross compilation is refused. Overlays apply as in
# nixpkgs (pkgs/top-level/stage.nix): each `final: prev:` in order, `final`
# the finished set; llm-agents passes one to its own nixpkgs.
{
  localSystem ? {
    system = builtins.currentSystem;
  },
  system ? localSystem.system,
  crossSystem ? null,
  config ? { },
  overlays ? [ ],
  crossOverlays ? [ ],
}:
assert crossSystem == null || throw "agent-images stand-in nixpkgs: crossSystem is not supported";
assert builtins.isList overlays || throw "agent-images stand-in nixpkgs: overlays must be a list";
assert crossOverlays == [ ] || throw "agent-images stand-in nixpkgs: crossOverlays are not supported";
let
  supported = [
    "x86_64-linux"
    "aarch64-linux"
  ];
in
if !(builtins.elem system supported) then
  throw "agent-images stand-in nixpkgs: system ${system} is not supported (only ${toString supported})"
else
  let
    base = import ./pkgs {
      lib = import ./lib;
      inherit system;
      config = if builtins.isFunction config then config { } else config;
    };
    final = builtins.foldl' (prev: overlay: prev // overlay final prev) base overlays;
  in
  final
