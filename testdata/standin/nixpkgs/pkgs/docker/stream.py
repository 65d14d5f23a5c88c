"""Writes a docker-archive (the `docker save` format that `docker load`,
`podman load` and go-containerregistry's tarball package read) to stdout from
the image description conf.py produced. Every byte depends only on that
description and the store paths, so two runs give the same archive."""
import datetime
import hashlib
import json
import os
import stat
import sys
import tarfile
import tempfile


def epoch(timestamp):
    if timestamp == "now":
        return int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    return int(datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def store_entries(path):
    """The path and, for a directory, everything below it, in sorted order and
    without following symlinks."""
    yield path
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(dirs + files):
                yield os.path.join(root, name)


def write_store_layer(fileobj, paths, conf, mtime):
    def owned(ti):
        ti.mtime = mtime
        ti.uid, ti.gid = conf["uid"], conf["gid"]
        ti.uname, ti.gname = conf["uname"], conf["gname"]
        return ti

    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # /nix and /nix/store come first and belong to uid/gid, so an image
        # built with a non-root uid gives that user a writable store.
        for d in ("nix", "nix/store"):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tar.addfile(owned(ti))
        entries = sorted(e for p in paths for e in store_entries(p))
        for entry in entries:
            ti = tar.gettarinfo(entry, arcname=entry.lstrip("/"))
            if ti.islnk():  # hard links (store optimisation) become plain files
                ti.type = tarfile.REGTYPE
                ti.linkname = ""
                ti.size = os.lstat(entry).st_size
            ti.mode = stat.S_IMODE(os.lstat(entry).st_mode)
            owned(ti)
            if ti.isreg():
                with open(entry, "rb") as f:
                    tar.addfile(ti, f)
            else:
                tar.addfile(ti)


def add_file(archive, name, fileobj, size, mtime):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = mtime
    ti.mode = 0o444
    archive.addfile(ti, fileobj)


def add_bytes(archive, name, data, mtime):
    tmp = tempfile.TemporaryFile()
    tmp.write(data)
    tmp.seek(0)
    add_file(archive, name, tmp, len(data), mtime)


def sha256_of(fileobj):
    h = hashlib.sha256()
    fileobj.seek(0)
    for chunk in iter(lambda: fileobj.read(1 << 20), b""):
        h.update(chunk)
    fileobj.seek(0)
    return h.hexdigest()


def main():
    with open(sys.argv[1]) as f:
        conf = json.load(f)
    mtime = epoch(conf["mtime"])
    created = conf["created"]
    if created == "now":
        created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    archive = tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.GNU_FORMAT)
    layer_names, diff_ids, history = [], [], []

    for paths in conf["store_layers"]:
        with tempfile.TemporaryFile() as tmp:
            write_store_layer(tmp, paths, conf, mtime)
            digest = sha256_of(tmp)
            name = f"{digest}/layer.tar"
            add_file(archive, name, tmp, os.fstat(tmp.fileno()).st_size, mtime)
        layer_names.append(name)
        diff_ids.append("sha256:" + digest)
        history.append({"created": created, "comment": "store paths: " + " ".join(paths)})

    layer = os.path.join(conf["customisation_layer"], "layer.tar")
    with open(os.path.join(conf["customisation_layer"], "checksum")) as f:
        digest = f.read().strip()
    with open(layer, "rb") as f:
        add_file(archive, f"{digest}/layer.tar", f, os.path.getsize(layer), mtime)
    layer_names.append(f"{digest}/layer.tar")
    diff_ids.append("sha256:" + digest)
    history.append({"created": created, "comment": "customisation layer"})

    image_config = {
        "architecture": conf["architecture"],
        "os": conf["os"],
        "created": created,
        "config": conf["config"],
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    config_bytes = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    add_bytes(archive, config_name, config_bytes, mtime)

    manifest = [{"Config": config_name, "RepoTags": [conf["repo_tag"]], "Layers": layer_names}]
    add_bytes(archive, "manifest.json", json.dumps(manifest, indent=2).encode(), mtime)
    archive.close()
    print(f"Created image {conf['repo_tag']} with {len(layer_names)} layers", file=sys.stderr)


main()
