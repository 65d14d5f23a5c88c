"""Builder of the stand-in closureInfo. Nix hands a structured-attrs build the
closure of `exportReferencesGraph.closure` in .attrs.json; this writes it out
in the three files nixpkgs' closureInfo produces."""
import json
import os

with open(os.path.join(os.environ.get("NIX_BUILD_TOP", "."), ".attrs.json")) as f:
    attrs = json.load(f)
out = attrs["outputs"]["out"]
closure = sorted(attrs["closure"], key=lambda p: p["path"])
os.makedirs(out)

# The format of `nix-store --dump-db`, which `nix-store --load-db` reads:
# path, NAR hash, NAR size, deriver (empty), reference count, references.
lines = []
for info in closure:
    refs = sorted(info["references"])
    lines += [info["path"], info["narHash"], str(info["narSize"]), "", str(len(refs))] + refs
with open(os.path.join(out, "registration"), "w") as f:
    f.write("\n".join(lines) + "\n")
with open(os.path.join(out, "store-paths"), "w") as f:
    f.write("".join(p["path"] + "\n" for p in closure))
with open(os.path.join(out, "total-nar-size"), "w") as f:
    f.write(str(sum(p["narSize"] for p in closure)) + "\n")
