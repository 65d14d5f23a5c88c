package flake

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	var targets []Target
	for _, a := range []string{"broken", "pi", "wrongarch"} {
		for _, s := range Systems {
			targets = append(targets, Target{Agent: a, System: s, Image: Image{DrvPath: drvOf(a, s)}})
		}
	}
	results := buildAll(t, targets, withNix(fake), WithWorkDir(t.TempDir()), WithJobs(3))
	want := map[string]string{
		"broken/x86_64-linux":     "builder failed",
		"broken/aarch64-linux":    "",
		"pi/x86_64-linux":         "",
		"pi/aarch64-linux":        "",
		"wrongarch/x86_64-linux":  "",
		"wrongarch/aarch64-linux": "image platform is linux/amd64, want linux/arm64",
	}
	for i, r := range results {
		tg := targets[i]
		w := want[tg.String()]
		switch {
		case w == "" && r.err != nil:
			t.Errorf("%s: Build = %v, want success", tg, r.err)
		case w != "" && (r.err == nil || !strings.Contains(r.err.Error(), w)):
			t.Errorf("%s: Build = %v, want an error containing %q", tg, r.err, w)
		case w == "" && (r.built.Image == nil || r.built.Digest.Hex == "" || r.built.OutPath == ""):
			t.Errorf("%s: Build = %+v, want an image from %s", tg, r.built, drvOf(tg.Agent, tg.System))
		}
	}
	if len(calls) != len(targets)+1 || calls[0] != "--version" {
		t.Errorf("nix calls = %q, want --version once, then one per target", calls)
	}
	for _, c := range calls[1:] {
		if !strings.HasPrefix(c, "build --json --out-link ") || !strings.HasSuffix(c, ".drv^out") || strings.Contains(c, "#") || strings.Contains(c, "--override-input") {
			t.Errorf("nix %s: want nix build of a .drv, evaluating no flake", c)
		}
	}
}

// result is what Build gave one target.
type result struct {
	built *Built
	err   error
}

// buildAll builds targets with one Builder, all at once, in target order.
func buildAll(t *testing.T, targets []Target, opts ...Option) []result {
	t.Helper()
	b, err := NewBuilder(append([]Option{WithCacheDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return buildWith(b, targets)
}

// buildWith builds targets with b, all at once, in target order.
func buildWith(b *Builder, targets []Target) []result {
	out := make([]result, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Go(func() {
			built, err := b.Build(context.Background(), tg)
			out[i] = result{built, err}
		})
	}
	wg.Wait()
	return out
}

func drvOf(agent string, sys System) string {
	return "/nix/store/00000000000000000000000000000000-" + agent + "-" + string(sys) + ".drv"
}

// TestBuilderNeverClearsThroughALink: a work directory whose layers/ was a
// link to another directory used to have that directory wiped. The work
// directory holds no layers now, and is never cleared; one that is a link
// is refused.
func TestBuilderNeverClearsThroughALink(t *testing.T) {
	elsewhere := t.TempDir()
	if err := os.WriteFile(filepath.Join(elsewhere, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(work, "layers")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewBuilder(WithWorkDir(work), WithCacheDir(t.TempDir())); err != nil {
		t.Errorf("NewBuilder(work with a linked layers/) = %v", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "precious")); err != nil {
		t.Errorf("the linked directory lost its file: %v", err)
	}
	linked := filepath.Join(t.TempDir(), "work")
	if err := os.Symlink(elsewhere, linked); err != nil {
		t.Fatal(err)
	}
	if _, err := NewBuilder(WithWorkDir(linked), WithCacheDir(t.TempDir())); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("NewBuilder(a linked work directory) = %v, want refused", err)
	}
}
