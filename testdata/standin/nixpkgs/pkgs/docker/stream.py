"""Writes a docker-archive (the `docker save` format that `docker load`,
`podman load` and go-containerregistry's tarball package read) to stdout from
the image description conf.py produced.

It behaves as nixpkgs' stream_layered_image.py does, so that an image of the
stand-in has the bytes real dockerTools would give the same store paths: the
same layer tars (Python's tarfile in its default PAX format, streamed), the
same config JSON and the same archive around them. agent-images packs layers
itself and checks its bytes against this script's."""
import datetime
import hashlib
import io
import json
import os
import pathlib
import sys
import tarfile


def write_layer(out, paths, mtime, uid, gid, uname, gname):
    """Writes one store layer's tar to out: /nix and /nix/store, then every
    path and, unless it is a symlink, everything below it in sorted order,
    with absolute names, hard links as plain files and the ownership and
    mtime of the image."""

    def stamp(info):
        info.mtime, info.uid, info.gid = mtime, uid, gid
        info.uname, info.gname = uname, gname
        return info

    with tarfile.open(fileobj=out, mode="w|") as tar:
        for top in ("/nix", "/nix/store"):
            info = tarfile.TarInfo(top)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(stamp(info))
        for path in map(pathlib.Path, paths):
            members = [path] if path.is_symlink() else [path, *path.rglob("*")]
            for member in sorted(members):
                info = tar.gettarinfo(member)
                info.name = "/" + info.name
                if info.islnk():
                    info.type, info.linkname = tarfile.REGTYPE, ""
                    info.size = member.stat().st_size
                stamp(info)
                if info.isfile():
                    with open(member, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)


class Digest:
    """A sink that keeps only the sha256 and length of what it is given."""

    def __init__(self):
        self.sha, self.size = hashlib.sha256(), 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def parse_time(value, now=datetime.datetime.now(tz=datetime.timezone.utc)):
    return now if value == "now" else datetime.datetime.fromisoformat(value)


def add_bytes(tar, name, data, mtime):
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), mtime
    tar.addfile(info, io.BytesIO(data))


def main():
    with open(sys.argv[1]) as f:
        conf = json.load(f)
    if conf["from_image"] is not None:
        sys.exit("stand-in dockerTools: from_image is not supported")
    created = parse_time(conf["created"])
    mtime = int(parse_time(conf["mtime"]).timestamp())
    owner = (int(conf["uid"]), int(conf["gid"]), conf["uname"], conf["gname"])
    layers = []  # (checksum, paths)

    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as archive:
        for paths in conf["store_layers"]:
            assert all(p.startswith(conf["store_dir"]) for p in paths), paths
            # The outer tar needs the layer's size and name (its checksum)
            # before its bytes, so the layer is written twice: once to
            # measure it, once into the archive.
            digest = Digest()
            write_layer(digest, paths, mtime, *owner)
            checksum = digest.sha.hexdigest()
            info = tarfile.TarInfo(f"{checksum}/layer.tar")
            info.size, info.mtime = digest.size, mtime
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                with open(write_fd, "wb") as w:
                    write_layer(w, paths, mtime, *owner)
                os._exit(0)
            os.close(write_fd)
            with open(read_fd, "rb") as r:
                archive.addfile(info, r)
            os.waitpid(pid, 0)
            layers.append((checksum, paths))
            print("layer", len(layers), "from", paths, file=sys.stderr)

        custom = conf["customisation_layer"]
        with open(os.path.join(custom, "checksum")) as f:
            checksum = f.read().strip()
        # nixpkgs takes this entry's owner from the file, which a sandbox
        # shows as nixbld; a fixed owner keeps the archive the same with or
        # without one. The image (its layers and config) is the same either way.
        info = tarfile.TarInfo(f"{checksum}/layer.tar")
        info.size = os.path.getsize(os.path.join(custom, "layer.tar"))
        info.mode, info.mtime = 0o444, mtime
        with open(os.path.join(custom, "layer.tar"), "rb") as f:
            archive.addfile(info, f)
        layers.append((checksum, [custom]))

        stamp = datetime.datetime.isoformat(created)
        image = {
            "created": stamp,
            "architecture": conf["architecture"],
            "os": "linux",
            "config": conf["config"],
            "rootfs": {
                "diff_ids": [f"sha256:{c}" for c, _ in layers],
                "type": "layers",
            },
            "history": [{"created": stamp, "comment": f"store paths: {p}"} for _, p in layers],
        }
        config = json.dumps(image, indent=4).encode("utf-8")
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        add_bytes(archive, config_name, config, mtime)
        manifest = [
            {
                "Config": config_name,
                "RepoTags": [conf["repo_tag"]],
                "Layers": [f"{c}/layer.tar" for c, _ in layers],
            }
        ]
        add_bytes(archive, "manifest.json", json.dumps(manifest, indent=4).encode("utf-8"), mtime)
    print(f"Created image {conf['repo_tag']} with {len(layers)} layers", file=sys.stderr)


if __name__ == "__main__":
    main()
