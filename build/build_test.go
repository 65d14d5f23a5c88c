package build

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nothingnesses/agent-images/matrix"
	"github.com/nothingnesses/agent-images/record"
)

// TestBuildKeepsFailuresWithTheirTarget swaps nix build for a fake that
// "builds" a docker-archive, fails one target and mislabels another's
// architecture. Each target realises the derivation it was planned with,
// in its own process, without evaluating the flake.
func TestBuildKeepsFailuresWithTheirTarget(t *testing.T) {
	amd64 := dockerArchive(t, "amd64")
	arm64 := dockerArchive(t, "arm64")
	var mu sync.Mutex
	var calls []string
	fake := func(_ context.Context, args ...string) ([]byte, error) {
		mu.Lock()
		calls = append(calls, strings.Join(args, " "))
		mu.Unlock()
		if args[0] == "--version" {
			return []byte("nix (Nix) 2.26.3\n"), nil
		}
		drv, ok := strings.CutSuffix(args[len(args)-1], "^out")
		if !ok {
			// Nix >= 2.15 "builds" a bare .drv path: the file, not its outputs.
			return json.Marshal([]string{drv})
		}
		var out string
		switch {
		case strings.HasSuffix(drv, "-broken-x86_64-linux.drv"):
			return nil, errors.New("builder failed")
		case strings.HasSuffix(drv, "-wrongarch-aarch64-linux.drv"):
			out = amd64
		case strings.HasSuffix(drv, "-aarch64-linux.drv"):
			out = arm64
		default:
			out = amd64
		}
		return json.Marshal([]map[string]any{{"drvPath": drv, "outputs": map[string]string{"out": out}}})
	}
	var images []*record.Image
	for _, a := range []string{"broken", "pi", "wrongarch"} {
		for _, s := range matrix.Systems {
			img, err := record.NewImage(matrix.Target{Agent: a, System: s, Image: matrix.Image{DrvPath: drvOf(a, s)}})
			if err != nil {
				t.Fatal(err)
			}
			images = append(images, img)
		}
	}
	if err := Build(context.Background(), images, withNix(fake), WithWorkDir(t.TempDir()), WithJobs(3)); err != nil {
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
		case w == "" && (r.Image == nil || r.DrvPath != drvOf(r.Agent, r.System) || r.Digest.Hex == ""):
			t.Errorf("%s: Image %v DrvPath %q Digest %s, want an image from %s", r, r.Image, r.DrvPath, r.Digest, drvOf(r.Agent, r.System))
		}
	}
	if len(calls) != len(images)+1 || calls[0] != "--version" {
		t.Errorf("nix calls = %q, want --version once, then one per target", calls)
	}
	for _, c := range calls[1:] {
		if !strings.HasPrefix(c, "build --json --out-link ") || !strings.HasSuffix(c, ".drv^out") || strings.Contains(c, "#") || strings.Contains(c, "--override-input") {
			t.Errorf("nix %s: want nix build of a .drv, evaluating no flake", c)
		}
	}
}

func drvOf(agent string, sys matrix.System) string {
	return "/nix/store/00000000000000000000000000000000-" + agent + "-" + string(sys) + ".drv"
}
