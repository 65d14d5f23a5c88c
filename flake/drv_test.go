package flake

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestBuildRealisesTheEvaluatedDerivation builds from the release set's one
// evaluation: what nix realises is the derivation the evaluation named (the
// image's conf.json, which the image is packed from), so the index
// annotation and a merge job's provenance name what was built.
func TestBuildRealisesTheEvaluatedDerivation(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	ctx := context.Background()
	flake := Flake{Ref: testenv.RepoRoot(t), Overrides: testenv.StandinOverrides(t)}
	all, err := Load(ctx, flake)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := Select(all, []string{"pi"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls [][]string
	counting := func(ctx context.Context, args ...string) ([]byte, error) {
		if args[0] == "build" {
			mu.Lock()
			calls = append(calls, args)
			mu.Unlock()
		}
		return Run(ctx, args...)
	}
	seen := map[string]bool{}
	for i, r := range buildAll(t, targets, WithWorkDir(t.TempDir()), WithJobs(1), withNix(counting)) {
		if r.err != nil {
			t.Fatalf("building %s: %v", targets[i], r.err)
		}
		if r.built.OutPath == "" || r.built.Image == nil {
			t.Errorf("%s: built %+v, want an image", targets[i], r.built)
		}
	}
	for _, c := range calls {
		seen[strings.TrimSuffix(c[len(c)-1], "^out")] = true
	}
	for _, tg := range targets {
		if !strings.HasSuffix(tg.Image.ConfDrvPath, "-conf.json.drv") || !seen[tg.Image.ConfDrvPath] {
			t.Errorf("%s: nix realised %q, want the evaluated %q", tg, calls, tg.Image.ConfDrvPath)
		}
	}
	if len(seen) != len(targets) || len(calls) != len(targets) {
		t.Errorf("%d distinct derivations, %d nix runs for %d targets", len(seen), len(calls), len(targets))
	}
}
