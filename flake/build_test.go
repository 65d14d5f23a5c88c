package flake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// TestRealiseHeldStartsOneNixForWhatTheStoreHolds: a push of built images
// finds every conf.json in the store already, and realises them all in one
// nix process, where it started one per target; a conf.json that must be
// built still gets its own process when its target builds, so a failure
// stays with its target. When that one process fails, each target is
// realised on its own, as before.
func TestRealiseHeldStartsOneNixForWhatTheStoreHolds(t *testing.T) {
	for _, batchFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch fails %v", batchFails), func(t *testing.T) {
			store := t.TempDir()
			conf := packableConf(t, store)
			confs := map[string]string{} // derivation -> out path
			var targets []Target
			for i, a := range []string{"held1", "held2", "held3", "built", "broken"} {
				hash := strings.Repeat(string(rune('a'+i)), 32)
				drv := filepath.Join(store, hash+"-"+a+"-conf.json.drv")
				out := filepath.Join(store, hash+"-"+a+"-conf.json")
				if err := os.WriteFile(drv, []byte(`Derive([("out","`+out+`","","")],[],[],"x86_64-linux","/bin/sh",[],[])`), 0o644); err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(a, "held") {
					writeTestFile(t, out, conf)
				}
				confs[drv] = out
				targets = append(targets, Target{Agent: a, System: X86_64Linux, Image: Image{DrvPath: drvOf(a, X86_64Linux), ConfDrvPath: drv}})
			}
			var mu sync.Mutex
			var builds [][]string
			fake := func(_ context.Context, args ...string) ([]byte, error) {
				if args[0] == "--version" {
					return []byte("nix (Nix) 2.26.3\n"), nil
				}
				drvs := args[4:]
				mu.Lock()
				builds = append(builds, drvs)
				mu.Unlock()
				if batchFails && len(drvs) > 1 {
					return nil, errors.New("one of them failed")
				}
				var entries []map[string]any
				for _, d := range drvs {
					d = strings.TrimSuffix(d, "^out")
					switch out := confs[d]; {
					case strings.Contains(d, "-broken-"):
						return nil, errors.New("builder failed")
					case strings.Contains(d, "-built-"):
						writeTestFile(t, out, conf)
						fallthrough
					default:
						entries = append(entries, map[string]any{"drvPath": d, "outputs": map[string]string{"out": out}})
					}
				}
				return json.Marshal(entries)
			}
			work := t.TempDir()
			b, err := NewBuilder(WithCacheDir(t.TempDir()), WithWorkDir(work), withNix(fake))
			if err != nil {
				t.Fatal(err)
			}
			// An earlier run held more: its link would keep its closure.
			// A target's own link, whatever its name, is not the batch's.
			stale := filepath.Join(work, "out", "held", "conf-9")
			own := filepath.Join(work, "out", "conf", "held-9")
			for _, l := range []string{stale, own} {
				if err := os.MkdirAll(filepath.Dir(l), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(store, "old-conf.json"), l); err != nil {
					t.Fatal(err)
				}
			}
			b.RealiseHeld(context.Background(), targets)
			if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("an earlier run's out-link %s is still there (%v): it keeps what it names from being collected", stale, err)
			}
			if _, err := os.Lstat(own); err != nil {
				t.Errorf("a target's out-link %s went with the batch's: %v", own, err)
			}
			for i, r := range buildWith(b, targets) {
				tg := targets[i]
				switch {
				case tg.Agent == "broken" && (r.err == nil || !strings.Contains(r.err.Error(), "builder failed")):
					t.Errorf("%s: Build = %v, want its own failure", tg, r.err)
				case tg.Agent != "broken" && (r.err != nil || r.built.OutPath != confs[tg.Image.ConfDrvPath]):
					t.Errorf("%s: Build = %+v, %v; want the image packed from %s", tg, r.built, r.err, confs[tg.Image.ConfDrvPath])
				}
			}
			held := []string{targets[0].Image.ConfDrvPath + "^out", targets[1].Image.ConfDrvPath + "^out", targets[2].Image.ConfDrvPath + "^out"}
			want := [][]string{held}
			if batchFails {
				want = [][]string{held, {held[0]}, {held[1]}, {held[2]}}
			}
			for _, tg := range targets[3:] {
				want = append(want, []string{tg.Image.ConfDrvPath + "^out"})
			}
			sortRuns := func(runs [][]string) {
				slices.SortFunc(runs[1:], func(a, b []string) int { return strings.Compare(a[0], b[0]) })
			}
			sortRuns(builds)
			sortRuns(want)
			if !slices.EqualFunc(builds, want, slices.Equal) {
				t.Errorf("nix build runs = %q, want %q", builds, want)
			}
		})
	}
}

// packableConf is a conf.json the packer reads, of one store layer of one
// file and a customisation layer, which it writes into store.
func packableConf(t *testing.T, store string) []byte {
	t.Helper()
	payload := filepath.Join(store, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-payload")
	custom := filepath.Join(store, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy-customisation-layer")
	layer := []byte("a customisation layer")
	sum := sha256.Sum256(layer)
	writeTestFile(t, payload, []byte("payload"))
	writeTestFile(t, filepath.Join(custom, "layer.tar"), layer)
	writeTestFile(t, filepath.Join(custom, "checksum"), []byte(hex.EncodeToString(sum[:])))
	conf, err := json.Marshal(map[string]any{
		"architecture": "amd64", "config": map[string]any{}, "created": "1970-01-01T00:00:01Z", "mtime": "1970-01-01T00:00:01Z",
		"uid": 0, "gid": 0, "uname": "root", "gname": "root", "store_dir": store, "from_image": nil,
		"store_layers": [][]string{{payload}}, "customisation_layer": custom,
	})
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
