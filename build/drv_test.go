package build

import (
	"context"
	"testing"

	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/internal/testenv"
	"github.com/nothingnesses/agent-images/matrix"
	"github.com/nothingnesses/agent-images/record"
)

// TestDrvPathsMatchWhatBuildBuilt checks that evaluating a derivation names
// the very one nix build reports, so a merge job's provenance is right.
func TestDrvPathsMatchWhatBuildBuilt(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	ctx := context.Background()
	flake := nix.Flake{Ref: testenv.RepoRoot(t), Overrides: testenv.StandinOverrides(t)}
	targets := []matrix.Target{{Agent: "pi", System: matrix.X86_64Linux}, {Agent: "pi", System: matrix.Aarch64Linux}, {Agent: "codex", System: matrix.Aarch64Linux}}
	paths, err := DrvPaths(ctx, flake, targets)
	if err != nil {
		t.Fatalf("DrvPaths = %v", err)
	}
	var images []*record.Image
	for _, tg := range targets {
		img, err := record.NewImage(tg)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img)
	}
	if err := Build(ctx, flake, images, WithWorkDir(t.TempDir())); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range images {
		if r.Err != nil {
			t.Fatalf("building %s: %v", r, r.Err)
		}
		if got := paths[r.String()]; got != r.DrvPath {
			t.Errorf("DrvPaths[%s] = %s, want %s as nix build reported", r, got, r.DrvPath)
		}
		seen[r.DrvPath] = true
	}
	if len(seen) != len(targets) {
		t.Errorf("%d distinct derivations for %d targets", len(seen), len(targets))
	}
}
