package sign

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// layerEntry is one tar entry of a test layer.
type layerEntry struct {
	hdr  tar.Header
	body []byte
}

// storeTree reads a directory (or file, or symlink) on disk as the layer
// entries of /nix/store/<base>, in NAR order.
func storeTree(t *testing.T, root, base string) []layerEntry {
	t.Helper()
	var out []layerEntry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		name := "nix/store/" + base
		if rel != "." {
			name += "/" + filepath.ToSlash(rel)
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := layerEntry{hdr: tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: time.Unix(1, 0)}}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.hdr.Typeflag = tar.TypeSymlink
			if e.hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir():
			e.hdr.Typeflag, e.hdr.Name = tar.TypeDir, e.hdr.Name+"/"
		default:
			e.hdr.Typeflag = tar.TypeReg
			if e.body, err = os.ReadFile(p); err != nil {
				return err
			}
			e.hdr.Size = int64(len(e.body))
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// WalkDir visits names in lexical order, a directory before its
	// contents; NAR order compares component by component.
	sort.SliceStable(out, func(i, j int) bool {
		return compareRel(strings.Split(strings.TrimSuffix(out[i].hdr.Name, "/"), "/"), strings.Split(strings.TrimSuffix(out[j].hdr.Name, "/"), "/")) < 0
	})
	return out
}

// imageOfLayers is an image with one layer per entry list.
func imageOfLayers(t testing.TB, layers ...[]layerEntry) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	for _, entries := range layers {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			hdr := e.hdr
			if err := tw.WriteHeader(&hdr); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// nixHash is what Nix itself says the NAR hash of path is (hex SHA-256).
func nixHashOf(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("nix-hash", "--type", "sha256", path).CombinedOutput()
	if err != nil {
		t.Fatalf("nix-hash %s: %v\n%s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestNARHashMatchesNix builds store paths on disk with what NAR records
// (nested and empty directories, executable and empty files, contents of
// every padding, symlinks, names that sort differently as whole paths than
// component by component), lays them out in a layer in several orders, and
// checks that StorePaths gives the hash Nix's own nix-hash gives for each.
func TestNARHashMatchesNix(t *testing.T) {
	testenv.Require(t, "nix-hash")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	write := func(rel, body string, mode os.FileMode) {
		p := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("bin/foo", "#!/bin/sh\necho foo\n", 0o755)
	write("bin/foo-wrapped", strings.Repeat("x", 16), 0o755)
	write("lib/node_modules/lodash/index.js", "module.exports = 1;\n", 0o644)
	write("lib/node_modules/lodash.merge/index.js", "module.exports = 2;\n", 0o644)
	write("lib/node_modules/lodash-es/a b.js", "é\n", 0o644)
	write("share/empty", "", 0o644)
	write("share/seven", "1234567", 0o444)
	if err := os.MkdirAll(filepath.Join(tree, "share/emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../bin/foo", filepath.Join(tree, "share/foo-link")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file.sh")
	if err := os.WriteFile(file, []byte("echo hi\n"), 0o555); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("/nix/store/"+hashFoo+"-foo-1.0", link); err != nil {
		t.Fatal(err)
	}

	paths := []struct{ disk, base string }{
		{tree, hashFoo + "-tree-1.0"},
		{file, hashBash + "-file.sh"},
		{link, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-link"},
	}
	want := map[string]string{}
	var sorted []layerEntry
	for _, p := range paths {
		want["/nix/store/"+p.base] = nixHashOf(t, p.disk)
		sorted = append(sorted, storeTree(t, p.disk, p.base)...)
	}
	if len(want) != 3 || want["/nix/store/"+hashFoo+"-tree-1.0"] == "" {
		t.Fatalf("nix-hash gave %v", want)
	}

	byWholePath := slices.Clone(sorted) // how the offline nixpkgs stand-in orders a layer
	sort.SliceStable(byWholePath, func(i, j int) bool { return byWholePath[i].hdr.Name < byWholePath[j].hdr.Name })
	if slices.EqualFunc(byWholePath, sorted, func(a, b layerEntry) bool { return a.hdr.Name == b.hdr.Name }) {
		t.Fatal("the test tree sorts the same by whole path as in NAR order; it would not test the sorted fallback")
	}
	reversed := slices.Clone(sorted)
	slices.Reverse(reversed)
	var noDirs []layerEntry // some archivers leave out directories that hold something
	for i, e := range sorted {
		holds := i+1 < len(sorted) && strings.HasPrefix(sorted[i+1].hdr.Name, e.hdr.Name)
		if e.hdr.Typeflag != tar.TypeDir || !holds {
			noDirs = append(noDirs, e)
		}
	}
	duplicated := append(slices.Clone(sorted), sorted[3]) // the last of a name wins

	orders := []struct {
		name    string
		entries []layerEntry
	}{
		{"NAR order", sorted},
		{"sorted by whole path", byWholePath},
		{"reversed", reversed},
		{"without directory entries", noDirs},
		{"an entry twice", duplicated},
	}
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			got, err := StorePaths(t.Context(), imageOfLayers(t, o.entries))
			if err != nil {
				t.Fatalf("StorePaths = %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("StorePaths = %+v, want %d paths", got, len(want))
			}
			for _, sp := range got {
				if sp.NarHash.Hex != want[sp.Path] {
					t.Errorf("NAR hash of %s = %q, want %q (nix-hash)", sp.Path, sp.NarHash.Hex, want[sp.Path])
				}
			}
		})
	}
}

// TestNARHashUnknown: where the layers cannot say what Nix would serialise,
// the path is listed without a hash rather than with a wrong one.
func TestNARHashUnknown(t *testing.T) {
	base := "nix/store/" + hashFoo + "-foo-1.0"
	dir := func(name string) layerEntry {
		return layerEntry{hdr: tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o555}}
	}
	file := func(name, body string) layerEntry {
		return layerEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(body))}, body: []byte(body)}
	}
	tests := []struct {
		name   string
		layers [][]layerEntry
	}{
		{"spread over two layers", [][]layerEntry{{dir(base), file(base+"/a", "a")}, {file(base+"/b", "b")}}},
		{"a hard link", [][]layerEntry{{dir(base), file(base+"/a", "a"),
			{hdr: tar.Header{Name: base + "/b", Typeflag: tar.TypeLink, Linkname: base + "/a"}}}}},
		{"a whiteout", [][]layerEntry{{dir(base), file(base+"/.wh.a", "")}}},
		{"a FIFO", [][]layerEntry{{dir(base), {hdr: tar.Header{Name: base + "/fifo", Typeflag: tar.TypeFifo, Mode: 0o644}}}}},
		{"below a file", [][]layerEntry{{file(base, "x"), file(base+"/a", "a")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StorePaths(t.Context(), imageOfLayers(t, tt.layers...))
			if err != nil {
				t.Fatalf("StorePaths = %v", err)
			}
			if len(got) != 1 || got[0].Name != "foo" || got[0].NarHash != (v1.Hash{}) {
				t.Errorf("StorePaths = %+v, want foo without a NAR hash", got)
			}
		})
	}
}

// BenchmarkStorePaths lists and hashes the store paths of a 64 MiB layer
// (64 paths of 16 files of 64 KiB): in NAR order, as dockerTools writes
// it, and sorted by whole path, which takes the second read and the
// temporary copy. MB/s is of uncompressed layer content.
func BenchmarkStorePaths(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	var entries []layerEntry
	for p := range 64 {
		base := fmt.Sprintf("nix/store/%s-pkg%02d-1.0", strings.Repeat("a", 30)+fmt.Sprintf("%02d", p), p)
		entries = append(entries, layerEntry{hdr: tar.Header{Name: base + "/", Typeflag: tar.TypeDir, Mode: 0o555}})
		for f := range 16 {
			// "lib" and "lib.f" siblings sort differently by whole path.
			entries = append(entries, layerEntry{hdr: tar.Header{Name: fmt.Sprintf("%s/lib.%02d", base, f), Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(body))}, body: body})
		}
		entries = append(entries, layerEntry{hdr: tar.Header{Name: base + "/lib/", Typeflag: tar.TypeDir, Mode: 0o555}})
	}
	sort.SliceStable(entries, func(i, j int) bool {
		return compareRel(strings.Split(strings.TrimSuffix(entries[i].hdr.Name, "/"), "/"), strings.Split(strings.TrimSuffix(entries[j].hdr.Name, "/"), "/")) < 0
	})
	byWholePath := slices.Clone(entries)
	sort.SliceStable(byWholePath, func(i, j int) bool { return byWholePath[i].hdr.Name < byWholePath[j].hdr.Name })
	for _, o := range []struct {
		name    string
		entries []layerEntry
	}{{"NAR order", entries}, {"sorted by whole path", byWholePath}} {
		b.Run(o.name, func(b *testing.B) {
			img := imageOfLayers(b, o.entries)
			b.SetBytes(64 * 16 * int64(len(body)))
			b.ResetTimer()
			for b.Loop() {
				paths, err := StorePaths(b.Context(), img)
				if err != nil || len(paths) != 64 || paths[0].NarHash.Hex == "" {
					b.Fatalf("StorePaths = %d paths, %v", len(paths), err)
				}
			}
		})
	}
}
