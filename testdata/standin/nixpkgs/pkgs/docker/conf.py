"""Builder of the stand-in dockerTools' image description: which store paths
go into which layer, plus everything the stream script needs. Nix gives this
structured-attrs build the closure of the config and customisation layer."""
import datetime
import json
import os

with open(os.path.join(os.environ.get("NIX_BUILD_TOP", "."), ".attrs.json")) as f:
    attrs = json.load(f)
out = attrs["outputs"]["out"]

closure = {p["path"]: p["references"] for p in attrs.get("closure", [])}
skip = set(attrs["unnecessaryPaths"])


def dependants_count():
    """How many closure members need each path (itself included): nixpkgs'
    referencesByPopularity puts widely shared paths first, so they get their
    own layers and are shared between images. This is a simpler score with
    the same intent; ties break on the path so the order is stable."""
    memo = {}

    def reach(p):
        if p not in memo:
            memo[p] = set()  # guards against self-references
            seen = {p}
            for r in closure.get(p, []):
                if r != p:
                    seen |= reach(r)
            memo[p] = seen
        return memo[p]

    counts = {p: 0 for p in closure}
    for p in closure:
        for q in reach(p):
            counts[q] += 1
    return counts


counts = dependants_count()
paths = sorted((p for p in closure if p not in skip), key=lambda p: (-counts[p], p))

# One layer per store path while layers last; the customisation layer takes
# one, and the final store layer holds whatever is left.
available = attrs["maxLayers"] - 1
store_layers = [[p] for p in paths[: available - 1]] + [paths[available - 1 :]]
store_layers = [layer for layer in store_layers if layer]

tag = attrs["tag"]
if tag is None:
    tag = os.path.basename(out).split("-")[0]

with open(attrs["baseJson"]) as f:
    base = json.load(f)

# The fields of nixpkgs' conf.json, in its order: the base config, then
# what jq adds to it. uid and gid are strings there (jq --arg), and created
# is in the ISO form `date -Iseconds` gives.
created = attrs["created"]
if created != "now":
    created = datetime.datetime.fromisoformat(created).isoformat()
conf = dict(base)
conf.update(
    {
        "store_dir": attrs["storeDir"],
        "from_image": None,
        "store_layers": store_layers,
        "customisation_layer": attrs["customisationLayer"],
        "repo_tag": attrs["imageName"] + ":" + tag,
        "created": created,
        "mtime": attrs["mtime"],
        "uid": str(attrs["uid"]),
        "gid": str(attrs["gid"]),
        "uname": attrs["uname"],
        "gname": attrs["gname"],
    }
)
with open(out, "w") as f:
    json.dump(conf, f, indent=2)
