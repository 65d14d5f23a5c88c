# The rules an extraDirectories entry must follow, as data, so that
# mkAgentImage's error and the flake's checks name the same rule.
{ lib }:
let
  # Chowning any of these (or anything below them) to the agent user would
  # hand it the system, or the store, it is meant to be confined by.
  systemPaths = [
    "/etc"
    "/bin"
    "/usr"
    "/lib"
    "/sbin"
    "/dev"
    "/proc"
    "/sys"
    "/run"
    "/tmp"
    "/nix"
    "/var"
    "/root"
  ];

  isUnder = dir: path: path == dir || lib.hasPrefix "${dir}/" path;

  # Checked in this order; the first broken rule is the one reported. `..`
  # comes before the system-path rule so that "/opt/../etc" is rejected for
  # its `..` component, whatever the path it would resolve to.
  rules = [
    {
      name = "absolute";
      text = "must be an absolute path or start with ~/ (or be ~)";
      broken = path: !(path == "~" || lib.hasPrefix "~/" path || lib.hasPrefix "/" path);
    }
    {
      name = "characters";
      text = "may only contain letters, digits and / _ . + @ -";
      broken = path: builtins.match "~?[A-Za-z0-9/_.+@-]*" path == null;
    }
    {
      name = "dotdot";
      text = "must not contain `..` components";
      broken = path: lib.elem ".." (lib.splitString "/" path);
    }
    {
      name = "root";
      text = "must not be the root directory";
      broken = path: builtins.match "/+" path != null;
    }
    {
      name = "system-path";
      text = "must not be, or be inside, a system directory (${lib.concatStringsSep " " systemPaths})";
      broken = path: lib.any (dir: isUnder dir path) systemPaths;
    }
  ];
in
rec {
  inherit systemPaths rules;

  # The first rule `path` breaks ({ name, text }), or null when it is valid.
  brokenRule =
    path:
    let
      broken = lib.filter (rule: rule.broken path) rules;
    in
    if !(builtins.isString path) then
      {
        name = "string";
        text = "must be a string";
      }
    else if broken == [ ] then
      null
    else
      { inherit (builtins.head broken) name text; };

  # The error mkAgentImage raises for an invalid entry.
  errorMessage =
    path: rule:
    "mkAgentImage: extraDirectories entry ${builtins.toJSON path} is invalid: it ${rule.text} (rule: ${rule.name})";

  # The absolute container path of a valid entry, `~` standing for home.
  expand =
    home: path:
    if path == "~" then
      home
    else if lib.hasPrefix "~/" path then
      "${home}/${lib.removePrefix "~/" path}"
    else
      path;

  # `expand`, after throwing the error above for an invalid entry.
  validate =
    home: path:
    let
      rule = brokenRule path;
    in
    if rule == null then expand home path else throw (errorMessage path rule);
}
