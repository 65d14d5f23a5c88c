package smoke

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layer builds one layer from headers (contents are the Linkname of
// regular files, to keep the table short).
func layer(t *testing.T, hs ...tar.Header) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hs {
		var data []byte
		if h.Typeflag == tar.TypeReg {
			data, h.Linkname = []byte(h.Linkname), ""
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestImageFS(t *testing.T) {
	lower := layer(t,
		tar.Header{Name: "nix/store/abc-tool/bin/", Typeflag: tar.TypeDir, Mode: 0o555},
		tar.Header{Name: "nix/store/abc-tool/bin/tool", Typeflag: tar.TypeReg, Mode: 0o555, Linkname: "#!/bin/sh\n"},
		tar.Header{Name: "nix/store/abc-tool/bin/alias", Typeflag: tar.TypeSymlink, Linkname: "tool"},
		tar.Header{Name: "home/agent/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "etc/gone", Typeflag: tar.TypeReg, Mode: 0o644, Linkname: "x"},
		tar.Header{Name: "loop-a", Typeflag: tar.TypeSymlink, Linkname: "loop-b"},
		tar.Header{Name: "loop-b", Typeflag: tar.TypeSymlink, Linkname: "/loop-a"},
	)
	upper := layer(t,
		// The upper layer's metadata wins, as in overlayfs.
		tar.Header{Name: "home/agent/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 100},
		tar.Header{Name: "etc/.wh.gone", Typeflag: tar.TypeReg},
		tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "nix/store/abc-tool/bin"},
		tar.Header{Name: "usr/bin/up", Typeflag: tar.TypeSymlink, Linkname: "/../../bin/alias"},
		tar.Header{Name: "usr/bin/rel", Typeflag: tar.TypeSymlink, Linkname: "../../bin/alias"},
		tar.Header{Name: "sbin/hard", Typeflag: tar.TypeLink, Linkname: "nix/store/abc-tool/bin/tool"},
	)
	img, err := mutate.AppendLayers(empty.Image, lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := readImageFS(img)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		wantOK   bool
		wantPath string
		wantUID  int
		wantDir  bool
	}{
		{name: "relative symlink in a symlinked dir", path: "/bin/alias", wantOK: true, wantPath: "/nix/store/abc-tool/bin/tool"},
		{name: "dot-dot stops at the root", path: "/usr/bin/up", wantOK: true, wantPath: "/nix/store/abc-tool/bin/tool"},
		{name: "upper layer owner wins", path: "/home/agent", wantOK: true, wantPath: "/home/agent", wantUID: 1000, wantDir: true},
		{name: "implicit parent is root's", path: "/home", wantOK: true, wantPath: "/home", wantDir: true},
		{name: "whiteout removes", path: "/etc/gone"},
		{name: "symlink loop", path: "/loop-a"},
		{name: "missing", path: "/nope/x"},
		{name: "relative symlink up", path: "/usr/bin/rel", wantOK: true, wantPath: "/nix/store/abc-tool/bin/tool"},
		{name: "hard link", path: "/sbin/hard", wantOK: true, wantPath: "/sbin/hard"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := fsys.stat(tc.path)
			if ok != tc.wantOK || ok && (got.Path != tc.wantPath || got.Uid != tc.wantUID || got.isDir() != tc.wantDir) {
				t.Errorf("stat(%s) = %+v, %v, want path %q uid %d dir %v, %v", tc.path, got, ok, tc.wantPath, tc.wantUID, tc.wantDir, tc.wantOK)
			}
		})
	}
	if _, info, ok := fsys.lookPath("alias", "/usr/local/bin:/bin"); !ok || info.Path != "/nix/store/abc-tool/bin/tool" {
		t.Errorf("lookPath(alias) = %+v, %v, want the tool", info, ok)
	}
	err = fsys.readFiles("/sbin/hard", "/nix/store/abc-tool/bin/tool")
	if data := fsys.contents; err != nil || string(data["/sbin/hard"]) != "#!/bin/sh\n" || string(data["/nix/store/abc-tool/bin/tool"]) != "#!/bin/sh\n" {
		t.Errorf("readFiles(hard link, target) = %q, %v, want the script twice", data, err)
	}
}
