package flake

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestStoreTarMatchesPython packs a tree with every kind of entry a store
// path holds, and names that make tarfile write PAX headers, with Go and
// with the stand-in stream script's write_layer (which does what nixpkgs'
// does): the bytes must be the same.
func TestStoreTarMatchesPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	root := t.TempDir()
	pkg := filepath.Join(root, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-pkg-1.0")
	long := filepath.Join(pkg, "share", strings.Repeat("long-name-", 12))
	for _, dir := range []string{filepath.Join(pkg, "bin"), filepath.Join(pkg, "empty"), long, filepath.Join(pkg, "a-b"), filepath.Join(pkg, "a")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"bin/tool":                         "#!/bin/sh\necho hi\n",
		"a-b/x":                            "dash",
		"a/x":                              "plain",
		"share/café.txt":                   "non-ASCII name",
		"share/" + strings.Repeat("f", 99): "a name of 99 bytes below the path",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(pkg, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(pkg, "bin/tool"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(long, "deep"), bytes.Repeat([]byte("x"), 1000), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(pkg, "a/x"), filepath.Join(pkg, "hardlink")); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"bin/sh": "tool", "lib": "/nonexistent/" + strings.Repeat("t", 100), "share/dirlink": "../bin"} {
		if err := os.Symlink(target, filepath.Join(pkg, link)); err != nil {
			t.Fatal(err)
		}
	}
	single := filepath.Join(root, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-file")
	if err := os.WriteFile(single, []byte("one file"), 0o444); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(root, "cccccccccccccccccccccccccccccccc-link")
	if err := os.Symlink(pkg, linked); err != nil {
		t.Fatal(err)
	}
	paths := []string{pkg, single, linked}

	for _, own := range []owner{
		{UID: 0, GID: 0, Uname: "root", Gname: "root", Mtime: 1},
		{UID: 1000, GID: 100, Uname: "a-user-name-longer-than-32-bytes-x", Gname: "users", Mtime: 1700000000},
	} {
		var got bytes.Buffer
		if err := writeStoreTar(context.Background(), &got, paths, own); err != nil {
			t.Fatal(err)
		}
		want := pythonLayer(t, paths, own)
		if !bytes.Equal(got.Bytes(), want) {
			i := 0
			for i < len(want) && i < got.Len() && want[i] == got.Bytes()[i] {
				i++
			}
			t.Errorf("writeStoreTar(%+v): %d bytes, Python %d; first difference at byte %d (block %d)", own, got.Len(), len(want), i, i/512)
		}
	}
}

// pythonLayer is the layer tar the stand-in stream script writes.
func pythonLayer(t *testing.T, paths []string, own owner) []byte {
	t.Helper()
	args, _ := json.Marshal([]any{paths, own.Mtime, own.UID, own.GID, own.Uname, own.Gname})
	script := `import json, sys
sys.path.insert(0, sys.argv[1])
import stream
stream.write_layer(sys.stdout.buffer, *json.loads(sys.argv[2]))`
	cmd := exec.Command("python3", "-c", script, filepath.Join(testenv.RepoRoot(t), "testdata/standin/nixpkgs/pkgs/docker"), string(args))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 write_layer: %v: %s", err, stderr.Bytes())
	}
	return out
}

func TestPathLessIsPathlibOrder(t *testing.T) {
	for _, c := range []struct{ a, b string }{{"/s/a/x", "/s/a-b"}, {"/s/a", "/s/a/x"}, {"/s/a.b", "/s/ab"}, {"/s/Z", "/s/a"}} {
		if !pathLess(c.a, c.b) || pathLess(c.b, c.a) {
			t.Errorf("pathLess(%q, %q) = %v, want true (and false reversed)", c.a, c.b, pathLess(c.a, c.b))
		}
	}
}
