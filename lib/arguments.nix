# The rules mkAgentImage's identity and path arguments must follow, as data,
# so that mkAgentImage's errors and the flake's `arguments` check name the
# same rule. Each rule is { name, text, broken }: `text` completes "it ...".
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

  # Names already in the image's /etc/passwd (or /etc/group).
  reservedNames = [
    "root"
    "nobody"
    "nogroup"
  ];

  # OCI labels that differ with every release of the same image. In the
  # config (part of the image digest) they would make every commit a new
  # image; release records them on the index instead.
  perReleaseLabels = [
    "org.opencontainers.image.created"
    "org.opencontainers.image.revision"
  ];

  isUnder = dir: path: path == dir || lib.hasPrefix "${dir}/" path;

  # A path's components after its leading `~` or `/`.
  components = path: lib.splitString "/" (lib.removePrefix "~" path);

  # Rules shared by extraDirectories entries (which may start with `~`) and
  # workingDir (which may not). Checked in this order; the first broken rule
  # is the one reported. `..` and normalisation come before the system-path
  # rule so that "/opt/../etc" and "//etc" are refused for how they are
  # written, whatever path they would resolve to.
  pathRules = absolute: [
    absolute
    {
      name = "characters";
      text = "may only contain letters, digits and / _ . + @ -";
      broken = path: builtins.match "~?[A-Za-z0-9/_.+@-]*" path == null;
    }
    {
      name = "dotdot";
      text = "must not contain `..` components";
      broken = path: lib.elem ".." (components path);
    }
    {
      name = "normalised";
      text = "must be normalised: no `//`, no `.` component, no trailing `/`";
      broken =
        path:
        let
          rest = lib.drop 1 (components path);
        in
        path != "/" && path != "~" && (lib.elem "" rest || lib.elem "." rest);
    }
    {
      name = "root";
      text = "must not be the root directory";
      broken = path: path == "/";
    }
    {
      name = "system-path";
      text = "must not be, or be inside, a system directory (${lib.concatStringsSep " " systemPaths})";
      broken = path: lib.any (dir: isUnder dir path) systemPaths;
    }
  ];

  idRules = [
    {
      name = "integer";
      text = "must be an integer, not a string";
      broken = id: !(builtins.isInt id);
    }
    {
      name = "range";
      text = "must be between 0 and 2147483647";
      broken = id: id < 0 || id > 2147483647;
    }
  ];
in
rec {
  inherit systemPaths reservedNames perReleaseLabels;

  # The rule lists, by the kind of argument they check. `uid` refuses 0
  # unless the caller opted in with allowRoot; `user` takes the uid, since
  # "root" is the one reserved name a root image may use.
  rules =
    {
      uid ? 1000,
      allowRoot ? false,
    }:
    {
      directory = pathRules {
        name = "absolute";
        text = "must be an absolute path or start with ~/ (or be ~)";
        broken = path: !(path == "~" || lib.hasPrefix "~/" path || lib.hasPrefix "/" path);
      };
      workingDir = pathRules {
        name = "absolute";
        text = "must be an absolute path";
        broken = path: !(lib.hasPrefix "/" path);
      };
      user = [
        {
          name = "user-name";
          text = "must be a portable user name: a lower-case letter or _, then lower-case letters, digits, _ or -, at most 32 characters";
          broken = user: builtins.match "[a-z_][a-z0-9_-]*" user == null || builtins.stringLength user > 32;
        }
        {
          name = "reserved";
          text = "must not be one of the names the image already has (${lib.concatStringsSep " " reservedNames})";
          broken = user: lib.elem user reservedNames && !(user == "root" && uid == 0);
        }
      ];
      labels = [
        {
          name = "attrset";
          text = "must be an attribute set of label names to strings";
          broken = labels: !(builtins.isAttrs labels);
        }
      ];
      label-key = [
        {
          name = "label-name";
          text = "must be a label name: a letter or digit, then letters, digits and . _ - / (such as org.opencontainers.image.vendor)";
          broken = key: builtins.match "[A-Za-z0-9][A-Za-z0-9._/-]*" key == null;
        }
        {
          name = "per-release";
          text = "must not be a fact of one release (${lib.concatStringsSep " " perReleaseLabels}): in the config, which is part of the image digest, it would make every commit a new image; release puts it on the index";
          broken = key: lib.elem key perReleaseLabels;
        }
      ];
      label-value = [ ];
      gid = idRules;
      uid =
        idRules
        ++ lib.optional (!allowRoot) {
          name = "root";
          text = "must not be 0 (root) unless allowRoot = true";
          broken = id: id == 0;
        };
    };

  # The first rule of `kind` that `value` breaks ({ name, text }), or null.
  # Strings are checked for being strings first, so a rule never sees a value
  # of the wrong type.
  brokenRule =
    context: kind: value:
    let
      stringKind = lib.elem kind [
        "directory"
        "workingDir"
        "user"
        "label-key"
        "label-value"
      ];
      # Stops at the first broken rule: later rules may assume earlier ones
      # hold (range compares an integer).
      first =
        list:
        if list == [ ] then
          null
        else if (builtins.head list).broken value then
          { inherit (builtins.head list) name text; }
        else
          first (builtins.tail list);
    in
    if stringKind && !(builtins.isString value) then
      {
        name = "string";
        text = "must be a string";
      }
    else
      first (rules context).${kind};

  # The error mkAgentImage raises: it names the argument, the value and the
  # rule, e.g. `mkAgentImage: workingDir "/" is invalid: it must not be the
  # root directory (rule: root)`.
  errorMessage =
    argument: value: rule:
    "mkAgentImage: ${argument} ${builtins.toJSON value} is invalid: it ${rule.text} (rule: ${rule.name})";

  # `value`, after throwing the error above if it breaks a rule of `kind`.
  check =
    context: argument: kind: value:
    let
      rule = brokenRule context kind value;
    in
    if rule == null then value else throw (errorMessage argument value rule);

  # The absolute container path of a valid extraDirectories entry, `~`
  # standing for home.
  expand =
    home: path:
    if path == "~" then
      home
    else if lib.hasPrefix "~/" path then
      "${home}/${lib.removePrefix "~/" path}"
    else
      path;
}
