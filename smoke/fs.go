package smoke

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// imageFS is the flattened filesystem of an image as tar headers (owners,
// modes, link targets), so static checks see exactly what a runtime would
// unpack. Contents are kept only for small files under /etc; others are read
// on demand with a second pass.
type imageFS struct {
	img v1.Image
	// entries are by clean absolute path; the root and directories that
	// exist only as parents of entries are there as a runtime creates them,
	// root-owned with mode 0755.
	entries  map[string]*tar.Header
	contents map[string][]byte
}

const keepEtcBytes = 1 << 20

func readImageFS(img v1.Image) (*imageFS, error) {
	f := &imageFS{img: img, entries: map[string]*tar.Header{}, contents: map[string][]byte{}}
	err := f.walk(func(p string, h *tar.Header, r io.Reader) error {
		f.entries[p] = h
		if h.Typeflag == tar.TypeReg && h.Size <= keepEtcBytes && strings.HasPrefix(p, "/etc/") {
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			f.contents[p] = b
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading image filesystem: %w", err)
	}
	f.entries["/"] = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}
	for _, p := range slices.Collect(maps.Keys(f.entries)) {
		for d := path.Dir(p); d != "/" && f.entries[d] == nil; d = path.Dir(d) {
			f.entries[d] = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}
		}
	}
	return f, nil
}

// walk streams the flattened filesystem through fn.
func (f *imageFS) walk(fn func(p string, h *tar.Header, r io.Reader) error) error {
	rc := mutate.Extract(f.img)
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
		p := path.Clean("/" + h.Name)
		if p == "/" {
			continue
		}
		if err := fn(p, h, tr); err != nil {
			return err
		}
	}
}

// fileInfo is a path's tar header and the path it names after following
// symlinks (lstat: the path itself).
type fileInfo struct {
	Path string
	*tar.Header
}

func (i fileInfo) isDir() bool { return i.Typeflag == tar.TypeDir }
func (i fileInfo) isExec() bool {
	return (i.Typeflag == tar.TypeReg || i.Typeflag == tar.TypeLink) && i.Mode&0o111 != 0
}

// lstat describes p itself, without following a final symlink (but following
// symlinks in its parents).
func (f *imageFS) lstat(p string) (fileInfo, bool) {
	dir, ok := f.resolve(path.Dir(path.Clean(p)), 0)
	if !ok {
		return fileInfo{}, false
	}
	p = path.Join(dir, path.Base(p))
	h, ok := f.entries[p]
	return fileInfo{p, h}, ok
}

// stat describes what p names after following every symlink.
func (f *imageFS) stat(p string) (fileInfo, bool) {
	p, ok := f.resolve(p, 0)
	if !ok {
		return fileInfo{}, false
	}
	h, ok := f.entries[p]
	return fileInfo{p, h}, ok
}

// resolve follows symlinks component by component the way the kernel would
// inside the container: absolute targets start at the image root, and ".."
// never leaves it. It fails on a missing component or a symlink loop.
func (f *imageFS) resolve(p string, depth int) (string, bool) {
	if depth > 40 {
		return "", false // too many levels of symbolic links
	}
	cur := "/"
	for part := range strings.SplitSeq(strings.TrimPrefix(path.Clean("/"+p), "/"), "/") {
		next := path.Join(cur, part)
		h, ok := f.entries[next]
		switch {
		case !ok:
			return "", false
		case h.Typeflag != tar.TypeSymlink:
			cur = next
		default:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			if cur, ok = f.resolve(target, depth+1); !ok {
				return "", false
			}
			depth++
		}
	}
	return cur, true
}

// lookPath finds cmd on the PATH the way `command -v` would, returning the
// PATH entry it found and the file that entry resolves to.
func (f *imageFS) lookPath(cmd, pathEnv string) (found string, info fileInfo, ok bool) {
	if strings.Contains(cmd, "/") {
		i, ok := f.stat(cmd)
		return cmd, i, ok && i.isExec()
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" || !path.IsAbs(dir) {
			continue
		}
		cand := path.Join(dir, cmd)
		if i, ok := f.stat(cand); ok && i.isExec() {
			return cand, i, true
		}
	}
	return "", fileInfo{}, false
}

// readFile is the content of the regular file p names; the error says why
// there is none.
func (f *imageFS) readFile(p string) ([]byte, error) {
	info, ok := f.stat(p)
	if !ok || info.isDir() {
		return nil, fmt.Errorf("%s: %s", p, describe(info, ok))
	}
	if err := f.readFiles(info.Path); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return f.contents[info.Path], nil
}

// readFiles puts the given resolved regular files (hard links followed) in
// contents, reading the image again, once, for those not read before. Each
// pass unpacks every layer, so callers ask for files together.
func (f *imageFS) readFiles(paths ...string) error {
	want := map[string][]string{} // data-holding path -> requested paths
	for _, p := range paths {
		if _, ok := f.contents[p]; ok {
			continue
		}
		src := p
		if h, ok := f.entries[p]; ok && h.Typeflag == tar.TypeLink {
			src = path.Clean("/" + h.Linkname)
		}
		want[src] = append(want[src], p)
	}
	if len(want) == 0 {
		return nil
	}
	err := f.walk(func(p string, h *tar.Header, r io.Reader) error {
		reqs, ok := want[p]
		if !ok || h.Typeflag != tar.TypeReg {
			return nil
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		for _, q := range reqs {
			f.contents[q] = b
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading files from the image: %w", err)
	}
	return nil
}
