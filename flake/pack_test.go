package flake

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestPackedImageIsWhatNixBuilds packs stand-in images from their conf.json
// and builds the same images with nix build: the config (so its digest)
// and every layer's diff ID must be the same. pi is packed for both
// systems, a second agent for one, and test-nix-custom, whose store layers
// belong to a user other than root, for one. It runs with every nix of the
// test bed: the evaluation that names the conf derivation must work on all.
func TestPackedImageIsWhatNixBuilds(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	for _, n := range testenv.Nixes(t) {
		t.Run(n.Name, func(t *testing.T) {
			n.Use(t)
			packedIsWhatNixBuilds(t)
		})
	}
}

func packedIsWhatNixBuilds(t *testing.T) {
	ctx := context.Background()
	fl := Flake{Ref: testenv.RepoRoot(t), Overrides: testenv.StandinOverrides(t)}
	all, err := Load(ctx, fl)
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	var other string
	for _, tg := range all {
		if tg.Agent != "pi" && other == "" {
			other = tg.Agent
		}
		if tg.Agent == "pi" || tg.Agent == other && tg.System == X86_64Linux {
			targets = append(targets, tg)
		}
	}
	out, err := Run(ctx, append([]string{"eval", "--json", fl.Installable("packages.x86_64-linux.test-nix-custom"),
		"--apply", `i: { drvPath = i.drvPath; confDrvPath = i.agentImage.confDrvPath; }`}, fl.OverrideArgs()...)...)
	if err != nil {
		t.Fatal(err)
	}
	custom := Target{Agent: "test-nix-custom", System: X86_64Linux}
	if err := json.Unmarshal(out, &custom.Image); err != nil {
		t.Fatal(err)
	}
	targets = append(targets, custom)
	if len(targets) != 4 {
		t.Fatalf("targets %v, want pi on two systems, %s and test-nix-custom", targets, other)
	}

	work, cache := t.TempDir(), t.TempDir()
	b, err := NewBuilder(WithWorkDir(work), WithCacheDir(cache), WithJobs(2))
	if err != nil {
		t.Fatal(err)
	}
	results := buildWith(b, targets)
	version, err := DetectVersion(ctx, Run)
	if err != nil {
		t.Fatal(err)
	}
	for i, tg := range targets {
		if results[i].err != nil {
			t.Fatalf("packing %s: %v", tg, results[i].err)
		}
		packed := results[i].built.Image
		if filepath.Base(results[i].built.OutPath) == filepath.Base(tg.Image.DrvPath) || tg.Image.ConfDrvPath == "" {
			t.Fatalf("%s was not packed from its conf.json (%+v)", tg, tg.Image)
		}
		nixOut, err := Realise(ctx, Run, version, filepath.Join(work, "nix", tg.Agent+"-"+string(tg.System)), tg.Image.DrvPath)
		if err != nil {
			t.Fatal(err)
		}
		archive, err := Archive(ctx, nixOut[tg.Image.DrvPath], filepath.Join(work, tg.Agent+"-"+string(tg.System)+".tar"))
		if err != nil {
			t.Fatal(err)
		}
		nix, err := tarball.ImageFromPath(archive, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantConfig, _ := nix.RawConfigFile()
		gotConfig, _ := packed.RawConfigFile()
		if !bytes.Equal(gotConfig, wantConfig) {
			t.Errorf("%s: packed config\n%s\nnix build's\n%s", tg, gotConfig, wantConfig)
		}
		if got, want := diffIDs(t, packed), diffIDs(t, nix); !slices.Equal(got, want) {
			t.Errorf("%s: packed diff IDs %v, nix build's %v", tg, got, want)
		}
	}

	// Each distinct layer of the images was packed once, though pi's two
	// systems and the agents share store paths, and a second run on the
	// same machine packs nothing and gives the same images.
	distinct := map[v1.Hash]bool{}
	for _, r := range results {
		for _, d := range diffIDs(t, r.built.Image) {
			distinct[d] = true
		}
	}
	if n := b.cache.packed.Load(); n != int64(len(distinct)) {
		t.Errorf("packed %d layers for %d distinct ones", n, len(distinct))
	}
	again, err := NewBuilder(WithWorkDir(t.TempDir()), WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range buildWith(again, targets) {
		if r.err != nil || r.built.Digest != results[i].built.Digest {
			t.Errorf("%s again: %v, digest %v, want %s", targets[i], r.err, r.built, results[i].built.Digest)
		}
	}
	if n := again.cache.packed.Load(); n != 0 {
		t.Errorf("a second run packed %d layers, want none", n)
	}
}

func diffIDs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
