# The rules mkAgentImage's arguments must follow, as data, so that
# mkAgentImage's errors and the flake's `arguments` check name the same rule.
# Each rule is { name, text, broken }: `text` completes "it ...".
{ lib }:
let
  # Chowning any of these (or anything below them) to the agent user would
  # hand it the system, or the store, it is meant to be confined by.
  systemPaths = [
    "/etc"
    "/bin"
    "/usr"
    "/lib"
    "/lib64"
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

  # The ids of the entries the image's /etc/passwd and /etc/group hold
  # besides root and the user's (mkAgentImage writes them from here). A user
  # or group sharing one would be that entry too, for every program that
  # looks the id up.
  nobodyUid = 65534;
  nogroupGid = 65534;

  # Every control character but tab. Nix strings cannot be written with
  # \u escapes, JSON's can.
  controlCharacters = builtins.fromJSON ''"\u0001-\u0008\n-\u001f\u007f"'';
  hasControlCharacter = text: builtins.match "[^${controlCharacters}]*" text == null;

  # OCI labels that differ with every release of the same image. In the
  # config (part of the image digest) they would make every commit a new
  # image; release records them on the index instead.
  perReleaseLabels = [
    "org.opencontainers.image.created"
    "org.opencontainers.image.revision"
  ];

  # A repository name as the distribution spec has it: path components of
  # lower-case letters and digits, separated inside by one . or _, by __, or
  # by dashes.
  imageNameForm = "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*";

  isUnder = dir: path: path == dir || lib.hasPrefix "${dir}/" path;

  # A path's components after its leading `~` or `/`.
  components = path: lib.splitString "/" (lib.removePrefix "~" path);

  # Rules shared by extraDirectories entries (which may start with `~`) and
  # workingDir (which may not). Checked in this order; the first broken rule
  # is the one reported. `..` and normalisation come before the system-path
  # rule so that "/opt/../etc" and "//etc" are refused for how they are
  # written, whatever path they would resolve to. `home` is the user's home,
  # the one directory under /home a path may be (or be inside).
  pathRules = home: absolute: [
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
    {
      name = "home";
      text = "must not be /home, nor inside it outside the user's home (${home}; ~ stands for it)";
      broken = path: isUnder "/home" path && !(isUnder home path);
    }
  ];

  # The rules of uid (`file` /etc/passwd) and gid (/etc/group): 0 is root's,
  # refused unless the caller opted in with allowRoot; `taken` is the id of
  # the file's other entry.
  idRules = allowRoot: file: taken: [
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
  ]
  ++ lib.optional (!allowRoot) {
    name = "root";
    text = "must not be 0 (root) unless allowRoot = true";
    broken = id: id == 0;
  }
  ++ [
    {
      name = "taken";
      text = "must not be the id of another entry of the image's ${file} (${toString taken.id}, ${taken.name})";
      broken = id: id == taken.id;
    }
  ];
in
rec {
  inherit
    systemPaths
    reservedNames
    perReleaseLabels
    nobodyUid
    nogroupGid
    ;

  # The home mkAgentImage gives the user.
  homeOf = uid: user: if uid == 0 then "/root" else "/home/${user}";

  # The rule lists, by the kind of argument they check. `uid` and `gid`
  # refuse 0 unless the caller opted in with allowRoot; `user` takes the uid,
  # since "root" is the one reserved name a root image may use; paths take
  # the user's home, the one place under /home they may be.
  rules =
    {
      uid ? 1000,
      allowRoot ? false,
      user ? "agent",
    }:
    let
      home = homeOf uid user;
    in
    {
      directory = pathRules home {
        name = "absolute";
        text = "must be an absolute path or start with ~/ (or be ~)";
        broken = path: !(path == "~" || lib.hasPrefix "~/" path || lib.hasPrefix "/" path);
      };
      workingDir = pathRules home {
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
      gid = idRules allowRoot "/etc/group" {
        id = nogroupGid;
        name = "nogroup";
      };
      uid = idRules allowRoot "/etc/passwd" {
        id = nobodyUid;
        name = "nobody";
      };
      # What a container runtime, or a shell reading `env`, splits on must
      # not be in a name; what ends a line must not be in a value.
      extraEnv = [
        {
          name = "attrset";
          text = "must be an attribute set of variable names to values";
          broken = env: !(builtins.isAttrs env);
        }
      ];
      env-name = [
        {
          name = "env-name";
          text = "must be an environment variable name: a letter or _, then letters, digits or _ (no =, no line break)";
          broken = key: builtins.match "[A-Za-z_][A-Za-z0-9_]*" key == null;
        }
      ];
      # A value is what the config's Env holds: toString of it.
      env-value = [
        {
          name = "control-character";
          text = "must not contain a line break or any other control character but tab";
          broken = value: hasControlCharacter (toString value);
        }
      ];
      # Each feature is written into nix.conf, one line.
      nixExperimentalFeatures = [
        {
          name = "list";
          text = "must be a list of feature names";
          broken = features: !(builtins.isList features);
        }
      ];
      feature = [
        {
          name = "feature-name";
          text = "must be a Nix experimental feature name: a lower-case letter, then lower-case letters, digits or - (such as nix-command)";
          broken = feature: builtins.match "[a-z][a-z0-9-]*" feature == null;
        }
      ];
      # The distribution spec's forms, which OCI tools (and registries) hold
      # a reference to; `:` and `@` would start a tag or a digest.
      tag = [
        {
          name = "oci-tag";
          text = "must be an OCI tag: a letter, digit or _, then at most 127 letters, digits and _ . -";
          broken = tag: builtins.match "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}" tag == null;
        }
      ];
      name = [
        {
          name = "image-name";
          text = "must be an image name: /-separated components of lower-case letters and digits, joined inside a component by . _ __ or - (such as agent-images/pi), no tag (:), at most 255 characters";
          broken =
            name: builtins.stringLength name > 255 || builtins.match imageNameForm name == null;
        }
      ];
    };

  # Kinds whose values an error does not print: an environment value may be
  # a secret.
  unprintedKinds = [ "env-value" ];

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
        "env-name"
        "feature"
        "tag"
        "name"
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

  # The error mkAgentImage raises: it names the argument, the value (unless
  # `kind` is unprinted) and the rule, e.g. `mkAgentImage: workingDir "/" is
  # invalid: it must not be the root directory (rule: root)`.
  errorMessage =
    kind: argument: value: rule:
    "mkAgentImage: ${argument}${
      lib.optionalString (!lib.elem kind unprintedKinds) " ${builtins.toJSON value}"
    } is invalid: it ${rule.text} (rule: ${rule.name})";

  # `value`, after throwing the error above if it breaks a rule of `kind`.
  check =
    context: argument: kind: value:
    let
      rule = brokenRule context kind value;
    in
    if rule == null then value else throw (errorMessage kind argument value rule);

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
