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
	"github.com/nothingnesses/agent-images/record"
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
	var images []*record.Image
	for _, a := range []string{"broken", "pi", "wrongarch"} {
		for _, s := range matrix.Systems {
			img, err := record.NewImage(matrix.Target{Agent: a, System: s})
			if err != nil {
				t.Fatal(err)
			}
			images = append(images, img)
		}
	}
	flake := nix.Flake{Ref: "/src", Overrides: map[string]string{"nixpkgs": "path:/n"}}
	if err := Build(context.Background(), flake, images, withNix(fake), WithWorkDir(t.TempDir()), WithJobs(3)); err != nil {
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
	for _, r := range images {
		w := want[r.String()]
		switch {
		case w == "" && r.Err != nil:
			t.Errorf("%s: Err = %v, want success", r, r.Err)
		case w != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), w) || r.Error != r.Err.Error()):
			t.Errorf("%s: Err = %v (Error %q), want containing %q", r, r.Err, r.Error, w)
		case w == "" && (r.Image == nil || r.DrvPath != "/nix/store/x.drv" || r.Digest.Hex == ""):
			t.Errorf("%s: Image %v DrvPath %q Digest %s, want an image from /nix/store/x.drv", r, r.Image, r.DrvPath, r.Digest)
		}
	}
	if len(calls) != len(images) || !strings.Contains(calls[0], "--override-input nixpkgs path:/n") || !strings.Contains(calls[0], "--no-eval-cache") {
		t.Errorf("nix calls = %q, want one per target with the overrides and no eval cache", calls)
	}
}
