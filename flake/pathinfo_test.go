package flake_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestNarHashesOnEveryNix adds a file to the store and asks each nix of the
// test bed for its narHash beside a path the store does not hold: the one
// is what nix-store registered, the other is left out, whichever shape of
// `nix path-info --json` the version prints.
func TestNarHashesOnEveryNix(t *testing.T) {
	testenv.Require(t, "nix-store")
	file := filepath.Join(t.TempDir(), "narhash-probe-1.0")
	if err := os.WriteFile(file, []byte(time.Now().Format(time.RFC3339Nano)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range testenv.Nixes(t) {
		t.Run(n.Name, func(t *testing.T) {
			n.Use(t)
			ctx := context.Background()
			out, err := exec.Command("nix-store", "--add", file).Output()
			if err != nil {
				t.Fatalf("nix-store --add: %v", err)
			}
			added := strings.TrimSpace(string(out))
			out, err = exec.Command("nix", "hash", "path", "--type", "sha256", "--sri", added).Output()
			if err != nil {
				t.Fatalf("nix hash path %s: %v", added, err)
			}
			want := strings.TrimSpace(string(out))
			absent := "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-absent-1.0"
			got, err := flake.NarHashes(ctx, flake.Run, []string{added, absent})
			if err != nil {
				t.Fatalf("NarHashes = %v", err)
			}
			if len(got) != 1 || got[added] != want {
				t.Errorf("NarHashes(%s, %s) = %v, want only %s: %s", added, absent, got, added, want)
			}
		})
	}
}
