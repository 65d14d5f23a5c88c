package build

import (
	"context"
	"testing"

	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/matrix"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestBuildRealisesTheEvaluatedDerivation builds from the release set's one
// evaluation: what nix realises is the derivation the evaluation named, so
// the index annotation and a merge job's provenance name what was built.
func TestBuildRealisesTheEvaluatedDerivation(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	ctx := context.Background()
	flake := nix.Flake{Ref: testenv.RepoRoot(t), Overrides: testenv.StandinOverrides(t)}
	all, err := matrix.Load(ctx, flake)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := matrix.Select(all, []string{"pi"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var images []*record.Image
	for _, tg := range targets {
		img, err := record.NewImage(tg)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img)
	}
	var calls [][]string
	counting := func(ctx context.Context, args ...string) ([]byte, error) {
		if args[0] == "build" {
			calls = append(calls, args)
		}
		return nix.Run(ctx, args...)
	}
	if err := Build(ctx, images, WithWorkDir(t.TempDir()), WithJobs(1), withNix(counting)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, r := range images {
		if r.Err != nil {
			t.Fatalf("building %s: %v", r, r.Err)
		}
		if r.DrvPath != targets[i].Image.DrvPath || r.OutPath == "" || r.Image == nil {
			t.Errorf("%s: built %s (out %q), want the evaluated %s", r, r.DrvPath, r.OutPath, targets[i].Image.DrvPath)
		}
		seen[r.DrvPath] = true
	}
	if len(seen) != len(targets) || len(calls) != len(targets) {
		t.Errorf("%d distinct derivations, %d nix runs for %d targets", len(seen), len(calls), len(targets))
	}
}
