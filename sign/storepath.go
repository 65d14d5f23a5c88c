package sign

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/flake"
)

// StorePath is one top-level /nix/store entry found inside an image.
type StorePath struct {
	Path    string // /nix/store/<hash>-<name>-<version>[-<output>]
	Hash    string
	Name    string
	Version string
	// Output is the derivation output the name ends in ("bin", "dev", …),
	// "" for the default output, whose name has no suffix.
	Output string
	// NarHash is the SHA-256 of the path's NAR serialisation as the image
	// holds it: Nix's narHash of the path. It is zero when the image cannot
	// tell (see StorePaths).
	NarHash v1.Hash
}

// ParseStorePath splits a store path's base name the way Nix's
// builtins.parseDrvName does (see flake.ParseStorePath): "glibc-2.40-66-bin" is
// glibc, version 2.40-66, output bin. ok is false for names that are not
// store paths.
func ParseStorePath(base string) (sp StorePath, ok bool) {
	n, ok := flake.ParseStorePath(base)
	if !ok {
		return StorePath{}, false
	}
	return StorePath{Path: "/nix/store/" + base, Hash: n.Hash, Name: n.Name, Version: n.Version, Output: n.Output}, true
}

// StorePaths lists the top-level /nix/store entries of every layer of img,
// sorted by path, each with its NAR hash. It reads the image itself, so the
// SBOM describes what is shipped, not what the build meant to ship.
//
// A path has no NAR hash when the layers cannot say what Nix would
// serialise: its files are spread over more than one layer (overlay rules
// would decide), or it holds a hard link, a device, a FIFO or a whiteout.
// dockerTools writes none of these: each store path lies in one layer, hard
// links copied as files.
func StorePaths(ctx context.Context, img v1.Image) ([]StorePath, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	seen := map[string]*storePathState{}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := readStoreLayer(l, i, seen); err != nil {
			d, _ := l.Digest()
			return nil, fmt.Errorf("reading layer %s: %w", d, err)
		}
	}
	out := make([]StorePath, 0, len(seen))
	for _, st := range seen {
		if !st.failed {
			st.sp.NarHash = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", st.sum)}
		}
		out = append(out, st.sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// storePathState is a store path while the layers are read.
type storePathState struct {
	sp       StorePath
	layer    int
	nar      *narHasher
	unsorted bool // its tar entries are not in NAR order: hash them sorted
	failed   bool // no NAR hash can be given
	sum      []byte
}

// readStoreLayer reads one layer's store paths into seen and hashes those
// that start in it.
func readStoreLayer(l v1.Layer, index int, seen map[string]*storePathState) error {
	var here []*storePathState
	err := eachStoreEntry(l, func(h *tar.Header, base string, rel []string, body io.Reader) error {
		st := seen[base]
		if st == nil {
			sp, ok := ParseStorePath(base)
			if !ok {
				return nil
			}
			st = &storePathState{sp: sp, layer: index, nar: newNARHasher()}
			seen[base] = st
			here = append(here, st)
		}
		if st.layer != index {
			st.failed = true // spread over layers
		}
		if st.failed || st.unsorted {
			return nil
		}
		node, err := narNodeOf(h, rel)
		if err != nil {
			st.failed = true
			return nil
		}
		switch err := st.nar.add(node, body); {
		case errors.Is(err, errNAROrder):
			st.unsorted = true
		case errors.Is(err, errNotDirectory):
			st.failed = true
		case err != nil:
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	unsorted := map[string]*storePathState{}
	for _, st := range here {
		if st.unsorted && !st.failed {
			unsorted[strings.TrimPrefix(st.sp.Path, "/nix/store/")] = st
		} else if !st.failed {
			st.sum = st.nar.sum()
		}
		st.nar = nil
	}
	if len(unsorted) == 0 {
		return nil
	}
	return hashSorted(l, unsorted)
}

// hashSorted hashes store paths whose tar entries are out of NAR order: a
// second read of the layer keeps their files in a temporary file, then
// writes their NAR from it in order. Only layers that need it pay for it.
func hashSorted(l v1.Layer, want map[string]*storePathState) error {
	spool, err := os.CreateTemp("", "agent-images-nar-*")
	if err != nil {
		return fmt.Errorf("hashing store paths: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()

	type spooled struct {
		node   narNode
		offset int64
	}
	nodes := map[string][]spooled{}
	var offset int64
	err = eachStoreEntry(l, func(h *tar.Header, base string, rel []string, body io.Reader) error {
		if want[base] == nil {
			return nil
		}
		node, err := narNodeOf(h, rel)
		if err != nil {
			want[base].failed = true
			return nil
		}
		nodes[base] = append(nodes[base], spooled{node, offset})
		if node.kind == narRegular {
			if _, err := io.CopyN(spool, body, node.size); err != nil {
				return fmt.Errorf("hashing store paths: %w", err)
			}
			offset += node.size
		}
		return nil
	})
	if err != nil {
		return err
	}
	for base, list := range nodes {
		st := want[base]
		if st.failed {
			continue
		}
		// The last of the same name wins, as when the tar is unpacked.
		slices.Reverse(list)
		sort.SliceStable(list, func(i, j int) bool { return compareRel(list[i].node.rel, list[j].node.rel) < 0 })
		list = slices.CompactFunc(list, func(a, b spooled) bool { return compareRel(a.node.rel, b.node.rel) == 0 })
		n := newNARHasher()
		for _, s := range list {
			err := n.add(s.node, io.NewSectionReader(spool, s.offset, s.node.size))
			if errors.Is(err, errNotDirectory) {
				st.failed = true
				break
			}
			if err != nil {
				return err
			}
		}
		if !st.failed {
			st.sum = n.sum()
		}
	}
	return nil
}

// eachStoreEntry calls fn, in tar order, for each entry of the layer l under
// /nix/store, with the store path's base name, the path below it, and the
// entry's contents.
func eachStoreEntry(l v1.Layer, fn func(h *tar.Header, base string, rel []string, body io.Reader) error) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if base, rel, ok := storeEntry(h.Name); ok {
			if err := fn(h, base, rel, tr); err != nil {
				return err
			}
		}
	}
}

// storeEntry splits a layer entry under /nix/store into the store path's
// base name and the path components below it.
func storeEntry(name string) (base string, rel []string, ok bool) {
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	rest, ok := strings.CutPrefix(p, "nix/store/")
	if !ok {
		return "", nil, false
	}
	base, sub, _ := strings.Cut(rest, "/")
	if sub != "" {
		rel = strings.Split(sub, "/")
	}
	return base, rel, true
}

// narNodeOf is the NAR node of a tar entry, or an error for what NAR cannot
// hold or the tar cannot give.
func narNodeOf(h *tar.Header, rel []string) (narNode, error) {
	if len(rel) > 0 && strings.HasPrefix(rel[len(rel)-1], ".wh.") {
		return narNode{}, errors.New("whiteout")
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return narNode{rel: rel, kind: narDirectory}, nil
	case tar.TypeReg:
		return narNode{rel: rel, kind: narRegular, size: h.Size, executable: h.Mode&0o100 != 0}, nil
	case tar.TypeSymlink:
		return narNode{rel: rel, kind: narSymlink, target: h.Linkname}, nil
	default:
		return narNode{}, fmt.Errorf("tar entry type %q", h.Typeflag)
	}
}
