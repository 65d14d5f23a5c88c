# agent-images-entrypoint (lib/entrypoint.sh) for one image: the shim at the
# head of every image's Entrypoint that gives a uid other than the image's a
# private, writable HOME, and a uid or gid the image's /etc/passwd or
# /etc/group does not name an entry appended to them. Its interpreter and
# tools are store paths, so it works whatever basePackages the image has.
{
  pkgs,
  lib,
}:
{
  # The image's HOME, and every directory below it the image creates for its
  # user (absolute paths, parents first).
  home,
  homeDirs,
  # XDG variable name -> default directory relative to HOME.
  xdgDefaults,
  uid,
  gid,
  withNix,
}:
let
  relative = map (lib.removePrefix "${home}/") (lib.filter (d: lib.hasPrefix "${home}/" d) homeDirs);
  quoted = map lib.escapeShellArg relative;

  nixNote = lib.optionalString withNix ''
    if [ ! -w /nix/store ]; then
      warn "/nix/store belongs to uid ${toString uid}: Nix runs what the image ships but cannot add to the store as uid $uid. Run as uid ${toString uid} (rootless Podman: --userns=keep-id:uid=${toString uid},gid=${toString gid}) or build the image with uid = $uid."
    fi
  '';

  script =
    builtins.replaceStrings
      [
        "@shell@"
        "@coreutils@"
        "@uid@"
        "@xdgVars@"
        "@skeleton@"
        "@skeletonList@"
        "@nixNote@"
      ]
      [
        "${pkgs.bashInteractive}/bin/sh"
        "${pkgs.coreutils}"
        (toString uid)
        (lib.concatStringsSep " " (lib.mapAttrsToList (k: v: "${k}:${v}") xdgDefaults))
        # An empty pattern list would be a syntax error; "/" is never relative.
        (if quoted == [ ] then "/" else lib.concatStringsSep "|" quoted)
        (lib.concatStringsSep " " quoted)
        nixNote
      ]
      (builtins.readFile ./entrypoint.sh);
in
pkgs.runCommand "agent-images-entrypoint"
  {
    inherit script;
    passAsFile = [ "script" ];
    meta.mainProgram = "agent-images-entrypoint";
  }
  ''
    mkdir -p $out/bin
    cp "$scriptPath" $out/bin/agent-images-entrypoint
    chmod 0555 $out/bin/agent-images-entrypoint
  ''
