# Stand-in for nixpkgs' `lib`: only the functions agent-images (and this
# stand-in) call, each taking exactly the arguments the real one takes, so a
# call that would fail against real nixpkgs fails here too. Behaviour follows
# the real definitions in nixpkgs' lib/*.nix; the code is written afresh.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    foldl'
    genList
    head
    isAttrs
    isFunction
    isList
    isString
    length
    listToAttrs
    match
    parseDrvName
    replaceStrings
    split
    stringLength
    substring
    tail
    ;

  # lib/trivial.nix
  trivial = rec {
    id = x: x;
    const = x: _: x;
    boolToString = b: if b then "true" else "false";
    warn = msg: builtins.trace "warning: ${msg}";
    throwIf = cond: msg: if cond then throw msg else x: x;
    fix =
      f:
      let
        x = f x;
      in
      x;
    inherit (builtins) seq deepSeq;
    version = "stand-in";
    versionSuffix = "";
  };

  # lib/lists.nix
  lists = rec {
    inherit
      elem
      filter
      foldl'
      head
      tail
      length
      concatLists
      genList
      ;
    toList = x: if isList x then x else [ x ];
    optional = cond: elem: if cond then [ elem ] else [ ];
    optionals = cond: elems: if cond then elems else [ ];
    concatMap = f: list: concatLists (map f list);
    flatten = x: if isList x then concatMap flatten x else [ x ];
    any = builtins.any;
    all = builtins.all;
    last =
      list:
      assert list != [ ] || throw "lists.last: list must not be empty!";
      builtins.elemAt list (length list - 1);
    init =
      list:
      assert list != [ ] || throw "lists.init: list must not be empty!";
      take (length list - 1) list;
    take = count: sublist 0 count;
    drop = count: list: sublist count (length list) list;
    sublist =
      start: count: list:
      let
        len = length list;
      in
      genList (n: builtins.elemAt list (n + start)) (
        if start >= len then
          0
        else if start + count > len then
          len - start
        else
          count
      );
    imap0 = f: list: genList (n: f n (builtins.elemAt list n)) (length list);
    imap1 = f: list: genList (n: f (n + 1) (builtins.elemAt list n)) (length list);
    unique = foldl' (acc: e: if elem e acc then acc else acc ++ [ e ]) [ ];
    subtractLists = e: filter (x: !(elem x e));
    intersectLists = e: filter (x: elem x e);
    reverseList =
      xs:
      let
        l = length xs;
      in
      genList (n: builtins.elemAt xs (l - n - 1)) l;
    range =
      first: last:
      if first > last then [ ] else genList (n: first + n) (last - first + 1);
    findFirst =
      pred: default: list:
      let
        found = filter pred list;
      in
      if found == [ ] then default else head found;
  };

  # lib/strings.nix
  strings = rec {
    inherit concatStringsSep replaceStrings stringLength substring;
    concatStrings = concatStringsSep "";
    concatMapStrings = f: list: concatStrings (map f list);
    concatMapStringsSep =
      sep: f: list:
      concatStringsSep sep (map f list);
    concatLines = list: concatStrings (map (s: s + "\n") list);
    optionalString = cond: string: if cond then string else "";
    hasPrefix = pref: str: substring 0 (stringLength pref) str == pref;
    hasSuffix =
      suffix: content:
      let
        lenContent = stringLength content;
        lenSuffix = stringLength suffix;
      in
      lenContent >= lenSuffix && substring (lenContent - lenSuffix) lenContent content == suffix;
    hasInfix = infix: content: builtins.match ".*${escapeRegex infix}.*" "${content}" != null;
    removePrefix =
      prefix: str:
      if hasPrefix prefix str then
        substring (stringLength prefix) (stringLength str - stringLength prefix) str
      else
        str;
    removeSuffix =
      suffix: str:
      if hasSuffix suffix str then substring 0 (stringLength str - stringLength suffix) str else str;
    stringToCharacters = s: genList (p: substring p 1 s) (stringLength s);
    escapeRegex = escape (stringToCharacters "\\[{()^$?*+|.");
    escape = list: replaceStrings list (map (c: "\\${c}") list);
    splitString =
      sep: s:
      let
        parts = split (escapeRegex (toString sep)) (toString s);
      in
      map (x: if isString x then x else "") (filter isString parts);
    escapeShellArg =
      arg:
      let
        string = toString arg;
      in
      if match "[[:alnum:],._+:@%/-]+" string == null then
        "'${replaceStrings [ "'" ] [ "'\\''" ] string}'"
      else
        string;
    escapeShellArgs = concatMapStringsSep " " escapeShellArg;
    toLower = replaceStrings upperChars lowerChars;
    toUpper = replaceStrings lowerChars upperChars;
    lowerChars = stringToCharacters "abcdefghijklmnopqrstuvwxyz";
    upperChars = stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    makeSearchPath =
      subDir: paths: concatStringsSep ":" (map (path: path + "/" + subDir) (filter (x: x != null) paths));
    makeSearchPathOutput =
      output: subDir: pkgs:
      makeSearchPath subDir (map (attrsets.getOutput output) pkgs);
    makeBinPath = makeSearchPathOutput "bin" "bin";
    makeLibraryPath = makeSearchPathOutput "lib" "lib";
    isStorePath =
      x:
      let
        str = toString x;
      in
      builtins.isPath x == false
      && hasPrefix "${builtins.storeDir}/" str
      && builtins.match "[^/]+" (substring (stringLength builtins.storeDir + 1) (-1) str) != null;
  };

  # lib/attrsets.nix
  attrsets = rec {
    inherit attrNames listToAttrs;
    nameValuePair = name: value: { inherit name value; };
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    mapAttrs = builtins.mapAttrs;
    mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);
    mapAttrs' = f: set: listToAttrs (map (attr: f attr set.${attr}) (attrNames set));
    filterAttrs =
      pred: set:
      listToAttrs (
        lists.concatMap (
          name:
          let
            v = set.${name};
          in
          if pred name v then [ (nameValuePair name v) ] else [ ]
        ) (attrNames set)
      );
    concatMapAttrs = f: v: foldl' (a: b: a // b) { } (attrValues (mapAttrs f v));
    attrValues = builtins.attrValues;
    optionalAttrs = cond: as: if cond then as else { };
    hasAttrByPath =
      attrPath: e:
      let
        attr = head attrPath;
      in
      if attrPath == [ ] then
        true
      else if e ? ${attr} then
        hasAttrByPath (tail attrPath) e.${attr}
      else
        false;
    attrByPath =
      attrPath: default: set:
      if attrPath == [ ] then
        set
      else if isAttrs set && set ? ${head attrPath} then
        attrByPath (tail attrPath) default set.${head attrPath}
      else
        default;
    isDerivation = value: value.type or null == "derivation";
    getOutput =
      output: pkg:
      if !pkg ? outputSpecified || !pkg.outputSpecified then pkg.${output} or pkg.out or pkg else pkg;
    getBin = getOutput "bin";
    getLib = getOutput "lib";
    getDev = getOutput "dev";
  };

  # lib/meta.nix
  meta = rec {
    # Like nixpkgs: through overrideAttrs when the package has it, so the
    # result is a rebuilt derivation, not the old one with a new meta.
    addMetaAttrs =
      newAttrs: drv:
      if drv ? overrideAttrs then
        drv.overrideAttrs (old: {
          meta = (old.meta or { }) // newAttrs;
        })
      else
        drv // { meta = (drv.meta or { }) // newAttrs; };
    platformMatch =
      platform: elem:
      if isString elem then platform ? system && elem == platform.system else false;
    availableOn =
      platform: pkg:
      ((!pkg ? meta.platforms) || builtins.any (platformMatch platform) pkg.meta.platforms)
      && builtins.all (elem: !platformMatch platform elem) (pkg.meta.badPlatforms or [ ]);
    getExe =
      x:
      getExe' x (
        x.meta.mainProgram or (trivial.warn
          "getExe: Package ${
            x.name or "«name-missing»"
          } does not have the meta.mainProgram attribute. Using the package name instead."
          (getName x)
        )
      );
    getExe' =
      x: y:
      assert attrsets.isDerivation x || throw "getExe': The first argument is not a derivation";
      "${attrsets.getBin x}/bin/${y}";
    getName =
      x: if isString x then (parseDrvName x).name else x.pname or (parseDrvName x.name).name;
    getVersion =
      x: if isString x then (parseDrvName x).version else x.version or (parseDrvName x.name).version;
  };

  # lib/customisation.nix, reduced: the result can be re-called with changed
  # arguments through `.override`, which is all the stand-in dockerTools need.
  customisation = rec {
    makeOverridable =
      f: origArgs:
      let
        result = f origArgs;
        overrideWith = newArgs: origArgs // (if isFunction newArgs then newArgs origArgs else newArgs);
      in
      if isAttrs result then
        result // { override = newArgs: makeOverridable f (overrideWith newArgs); }
      else
        result;
  };

  # lib/asserts.nix
  asserts = {
    assertMsg = pred: msg: pred || throw msg;
    assertOneOf =
      name: val: xs:
      asserts.assertMsg (elem val xs) "${name} must be one of ${builtins.toJSON xs}, but is: ${builtins.toJSON val}";
  };

  # lib/licenses.nix: the licenses llm-agents' packages use. As there, each
  # licence's shortName is its attribute name (`mit`, `asl20`), and spdxId
  # the SPDX identifier where the licence has one.
  license = spdxId: fullName: {
    inherit spdxId fullName;
    free = true;
    redistributable = true;
    deprecated = false;
  };
  licenses = builtins.mapAttrs (shortName: l: { inherit shortName; } // l) {
    mit = license "MIT" "MIT License";
    asl20 = license "Apache-2.0" "Apache License 2.0";
    bsd3 = license "BSD-3-Clause" "BSD 3-clause \"New\" or \"Revised\" License";
    isc = license "ISC" "ISC License";
    agpl3Only = license "AGPL-3.0-only" "GNU Affero General Public License v3.0 only";
    gpl3Only = license "GPL-3.0-only" "GNU General Public License v3.0 only";
    blueOak100 = license "BlueOak-1.0.0" "Blue Oak Model License 1.0.0";
    unfree = {
      fullName = "Unfree";
      free = false;
      redistributable = false;
      deprecated = false;
    };
    unfreeRedistributable = {
      fullName = "Unfree redistributable";
      free = false;
      redistributable = true;
      deprecated = false;
    };
  };

  # lib/systems/doubles.nix, the two Linux systems only.
  platforms = {
    linux = [
      "x86_64-linux"
      "aarch64-linux"
    ];
    x86_64 = [ "x86_64-linux" ];
    aarch64 = [ "aarch64-linux" ];
  };
in
trivial
// lists
// strings
// attrsets
// meta
// customisation
// asserts
// {
  inherit
    trivial
    lists
    strings
    attrsets
    meta
    customisation
    asserts
    licenses
    platforms
    ;
  # Marker that this is not real nixpkgs; nothing in agent-images reads it.
  isAgentImagesStandin = true;
}
