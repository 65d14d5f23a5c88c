# `import nixpkgs { system = ...; config = ...; }` as with real nixpkgs. The
# arguments are those of nixpkgs' pkgs/top-level/impure.nix that this
# stand-in can honour; cross compilation and overlays are refused.
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
assert overlays == [ ] || throw "agent-images stand-in nixpkgs: overlays are not supported";
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
  import ./pkgs {
    lib = import ./lib;
    inherit system;
    config = if builtins.isFunction config then config { } else config;
  }
