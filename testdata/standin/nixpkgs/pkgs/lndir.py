"""Merge package trees into one directory of symlinks, like X11's `lndir
-silent` that nixpkgs' symlinkJoin runs: directories become real directories,
files and symlinks become links to the first package that provides them."""
import os
import sys


def link_tree(src, dst):
    os.makedirs(dst, exist_ok=True)
    for entry in sorted(os.listdir(src)):
        s = os.path.join(src, entry)
        d = os.path.join(dst, entry)
        if os.path.isdir(s):
            if os.path.islink(d) or (os.path.exists(d) and not os.path.isdir(d)):
                continue
            link_tree(s, d)
        elif not os.path.lexists(d):
            os.symlink(s, d)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for path in sys.argv[2:]:
        if os.path.isdir(path):
            link_tree(path, out)
        else:
            # nixpkgs' lndir fails on a plain file; dockerTools users hit that too.
            sys.exit(f"lndir: {path} is not a directory")


main()
