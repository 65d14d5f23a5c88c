package build

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/matrix"
)

// TestBuildKeepsFailuresWithTheirTarget swaps nix build for a fake that
// "builds" a docker-archive, fails one target and mislabels another's
// architecture.
func TestBuildKeepsFailuresWithTheirTarget(t *testing.T) {
	amd64 := dockerArchive(t, "amd64")
	arm64 := dockerArchive(t, "arm64")
	var mu sync.Mutex
	var calls []string
	fake := func(_ context.Context, args ...string) ([]byte, error) {
		mu.Lock()
		calls = append(calls, strings.Join(args, " "))
		mu.Unlock()
		var installable string
		for _, a := range args {
			if strings.Contains(a, "#packages.") {
				installable = a
			}
		}
		var out string
		switch {
		case strings.HasSuffix(installable, "x86_64-linux.broken"):
			return nil, errors.New("builder failed")
		case strings.HasSuffix(installable, "aarch64-linux.wrongarch"):
			out = amd64
		case strings.Contains(installable, "aarch64-linux"):
			out = arm64
		default:
			out = amd64
		}
		return json.Marshal([]map[string]any{{"drvPath": "/nix/store/x.drv", "outputs": map[string]string{"out": out}}})
	}
	var targets []matrix.Target
	for _, a := range []string{"broken", "pi", "wrongarch"} {
		for _, s := range matrix.Systems {
			targets = append(targets, matrix.Target{Agent: a, System: s})
		}
	}
	flake := nix.Flake{Ref: "/src", Overrides: map[string]string{"nixpkgs": "path:/n"}}
	results, err := Build(context.Background(), flake, targets, withNix(fake), WithWorkDir(t.TempDir()), WithJobs(3))
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	want := map[string]string{
		"broken/x86_64-linux":     "builder failed",
		"broken/aarch64-linux":    "",
		"pi/x86_64-linux":         "",
		"pi/aarch64-linux":        "",
		"wrongarch/x86_64-linux":  "",
		"wrongarch/aarch64-linux": "image platform is linux/amd64, want linux/arm64",
	}
	for i, r := range results {
		if r.Target.String() != targets[i].String() {
			t.Errorf("results[%d] is %s, want %s: results must keep the targets' order", i, r.Target, targets[i])
		}
		w := want[r.Target.String()]
		switch {
		case w == "" && r.Err != nil:
			t.Errorf("%s: Err = %v, want success", r.Target, r.Err)
		case w != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), w)):
			t.Errorf("%s: Err = %v, want containing %q", r.Target, r.Err, w)
		case w == "" && (r.Image == nil || r.DrvPath != "/nix/store/x.drv"):
			t.Errorf("%s: Image %v DrvPath %q, want an image from /nix/store/x.drv", r.Target, r.Image, r.DrvPath)
		}
	}
	if len(calls) != len(targets) || !strings.Contains(calls[0], "--override-input nixpkgs path:/n") || !strings.Contains(calls[0], "--no-eval-cache") {
		t.Errorf("nix calls = %q, want one per target with the overrides and no eval cache", calls)
	}
}
