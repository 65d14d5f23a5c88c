package smoke

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// shippedStore is what an image holds of a Nix store: the store paths in
// its layers, its database, and the targets of its GC roots.
type shippedStore struct {
	paths   []string
	db      []byte
	gcRoots []string
}

// readShippedStore reads the store paths, /nix/var/nix/db/db.sqlite and the
// links in /nix/var/nix/gcroots of img's filesystem.
func readShippedStore(t *testing.T, img v1.Image) shippedStore {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	var s shippedStore
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the image's filesystem: %v", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case path.Dir(name) == "nix/store" && path.Base(name) != ".links":
			s.paths = append(s.paths, "/"+name)
		case name == "nix/var/nix/db/db.sqlite":
			if s.db, err = io.ReadAll(tr); err != nil {
				t.Fatalf("reading %s: %v", name, err)
			}
		case strings.HasPrefix(name, "nix/var/nix/gcroots/") && h.Typeflag == tar.TypeSymlink:
			s.gcRoots = append(s.gcRoots, h.Linkname)
		}
	}
	slices.Sort(s.paths)
	return s
}

// sqlite runs query on the database db with the sqlite3 program and returns
// its rows, fields separated by a space.
func sqlite(t *testing.T, db, query string) [][]string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "sqlite3", "-readonly", "-separator", " ", db, query).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s %q: %v\n%s", db, query, err, out)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			rows = append(rows, strings.Fields(l))
		}
	}
	return rows
}

// storePathOf is the store path a file below the store belongs to, or "".
func storePathOf(p string) string {
	parts := strings.SplitN(p, "/", 5)
	if len(parts) < 4 || parts[0] != "" || parts[1] != "nix" || parts[2] != "store" {
		return ""
	}
	return "/nix/store/" + parts[3]
}

// TestFlakeNixDatabase reads the Nix database of the withNix images and
// finds every store path the image ships valid, the nixpkgs source of
// NIX_PATH and the flake registry, cacert's bundle and the nix-ld loader
// and libraries among them, and nothing valid that the image lacks; and the
// closure of its GC roots holds every one, so nix-collect-garbage in the
// container deletes none of them.
func TestFlakeNixDatabase(t *testing.T) {
	testenv.Require(t, "nix", "sqlite3")
	built := flakeImagesBuilt(t)
	for _, s := range flakeSystems {
		for _, attr := range []string{"test-nix", "test-nix-custom"} {
			t.Run(s.system+"/"+attr, func(t *testing.T) {
				b, ok := built[s.system][attr]
				if !ok {
					t.Fatalf("the flake has no packages.%s.%s", s.system, attr)
				}
				img := loadArchive(t, b.Out)
				store := readShippedStore(t, img)
				if store.db == nil {
					t.Fatal("the image has no /nix/var/nix/db/db.sqlite")
				}
				db := filepath.Join(t.TempDir(), "db.sqlite")
				if err := os.WriteFile(db, store.db, 0o444); err != nil {
					t.Fatal(err)
				}
				valid := map[string]bool{}
				for _, r := range sqlite(t, db, "SELECT path FROM ValidPaths") {
					valid[r[0]] = true
				}
				shipped := map[string]bool{}
				for _, p := range store.paths {
					shipped[p] = true
					if !valid[p] {
						t.Errorf("%s is in the image but not valid in its Nix database", p)
					}
				}
				for p := range valid {
					if !shipped[p] {
						t.Errorf("%s is valid in the image's Nix database but not in the image", p)
					}
				}

				// The paths the issue names, by where the image points at them.
				cfg, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				named := map[string]string{}
				for _, kv := range cfg.Config.Env {
					k, v, _ := strings.Cut(kv, "=")
					switch k {
					case "NIX_PATH":
						named["the nixpkgs of NIX_PATH"] = storePathOf(strings.TrimPrefix(v, "nixpkgs="))
					case "SSL_CERT_FILE":
						named["cacert (SSL_CERT_FILE)"] = storePathOf(v)
					case "NIX_LD":
						named["the loader of NIX_LD"] = storePathOf(v)
					case "NIX_LD_LIBRARY_PATH":
						for _, dir := range strings.Split(v, ":") {
							named["the nix-ld library directory "+dir] = storePathOf(dir)
						}
					}
				}
				if named["the nixpkgs of NIX_PATH"] == "" || named["cacert (SSL_CERT_FILE)"] == "" {
					t.Fatalf("the image's Env names no nixpkgs in NIX_PATH or no bundle in SSL_CERT_FILE: %q", cfg.Config.Env)
				}
				if b.Image.WithNixLd && named["the loader of NIX_LD"] == "" {
					t.Fatalf("the image has nix-ld but its Env names no NIX_LD: %q", cfg.Config.Env)
				}
				for what, p := range named {
					if !valid[p] {
						t.Errorf("%s (%s) is not valid in the image's Nix database", what, p)
					}
				}

				// nix-collect-garbage keeps the closure of the GC roots.
				refs := map[string][]string{}
				for _, r := range sqlite(t, db, "SELECT a.path, b.path FROM Refs JOIN ValidPaths a ON Refs.referrer = a.id JOIN ValidPaths b ON Refs.reference = b.id") {
					refs[r[0]] = append(refs[r[0]], r[1])
				}
				kept := map[string]bool{}
				queue := slices.Clone(store.gcRoots)
				for len(queue) > 0 {
					p := storePathOf(queue[0])
					queue = queue[1:]
					if p != "" && !kept[p] {
						kept[p] = true
						queue = append(queue, refs[p]...)
					}
				}
				for _, p := range store.paths {
					if !kept[p] {
						t.Errorf("%s is not reachable from the image's GC roots (%d of them): nix-collect-garbage would delete it", p, len(store.gcRoots))
					}
				}
				t.Logf("%d store paths shipped, all valid and reachable from %d GC roots, %d of them named by the config", len(store.paths), len(store.gcRoots), len(named))
			})
		}
	}
}
