package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestBenchImageSet builds three images of the benchmark set at a tiny
// scale and checks they have the structure the benchmark promises: one
// layer per store path (62 base, the runtimes, the agent's own), layers
// shared between agents exactly where they share base and runtime,
// payloads of the sizes sizes.json gives at that scale that compress like
// binaries, and the same bytes when rebuilt.
func TestBenchImageSet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds benchmark images with nix: skipped with -short")
	}
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	ctx := context.Background()
	root := testenv.RepoRoot(t)
	const scale = 0.002
	inputs := t.TempDir()
	if err := copyInputs(ctx, root, inputs, scale, "bench-test"); err != nil {
		t.Fatal(err)
	}
	overrides := []string{
		"--override-input", "nixpkgs", "path:" + filepath.Join(inputs, "nixpkgs"),
		"--override-input", "llm-agents", "path:" + filepath.Join(inputs, "llm-agents"),
		"--override-input", "llm-agents/nixpkgs", "path:" + filepath.Join(inputs, "nixpkgs"),
	}
	agents := []string{"pi", "codex", "gemini-cli"}
	args := []string{"build", "--json", "--no-link"}
	for _, a := range agents {
		args = append(args, root+"#packages.x86_64-linux."+a)
	}
	out, err := exec.CommandContext(ctx, "nix", append(args, overrides...)...).Output()
	if err != nil {
		t.Fatalf("nix %s: %v\n%s", strings.Join(args, " "), err, stderrOf(err))
	}
	var built []struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &built); err != nil || len(built) != len(agents) {
		t.Fatalf("nix build --json printed %s", out)
	}

	// nix build --json does not keep the installables' order; the outputs
	// are named after the images.
	outPath := map[string]string{}
	for _, b := range built {
		name := strings.SplitN(filepath.Base(b.Outputs["out"]), "-", 2)[1]
		outPath[strings.TrimSuffix(name, ".tar.gz")] = b.Outputs["out"]
	}
	layers := map[string][]v1.Hash{}
	payloads := map[string]int64{}
	var largest []byte
	for _, a := range agents {
		archive, err := flake.Archive(ctx, outPath[a], filepath.Join(t.TempDir(), a+".tar"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(archive, nil)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		layers[a] = cf.RootFS.DiffIDs
		err = eachLayer(archive, func(_ string, _ int64, r io.Reader) error {
			tr := tar.NewReader(r)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if strings.HasSuffix(h.Name, "/share/agent-images-bench/payload") {
					payloads[a] += h.Size
					if h.Size > int64(len(largest)) {
						if largest, err = io.ReadAll(tr); err != nil {
							return err
						}
					}
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// 62 base paths and the entrypoint shim every image gets, the runtimes,
	// the agent's own, the customisation layer.
	const base = 62 + 1
	for a, want := range map[string]int{"pi": base + 9 + 25 + 1, "codex": base + 3 + 1, "gemini-cli": base + 9 + 25 + 1} {
		if got := len(layers[a]); got != want {
			t.Errorf("%s has %d layers, want %d", a, got, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"pi", "codex", base},
		{"pi", "gemini-cli", base + 9},
	} {
		if got := shared(layers[tc.a], layers[tc.b]); got != tc.want {
			t.Errorf("%s and %s share %d layers, want %d (the base%s)", tc.a, tc.b, got, tc.want, map[bool]string{true: " and nodejs"}[tc.want > base])
		}
	}

	// Payloads add up to the parts' sizes at this scale (each path's share
	// is rounded down, hence the tolerance of a byte per path).
	var sizes struct {
		Shared map[string]struct{ MiB float64 } `json:"shared"`
		Agents []struct {
			Attr string
			MiB  float64
		} `json:"agents"`
	}
	b, _ := os.ReadFile(filepath.Join(root, "testdata", "bench", "sizes.json"))
	if err := json.Unmarshal(b, &sizes); err != nil {
		t.Fatal(err)
	}
	agentMiB := map[string]float64{}
	for _, a := range sizes.Agents {
		agentMiB[a.Attr] = a.MiB
	}
	for a, parts := range map[string][]float64{
		"pi":    {sizes.Shared["base"].MiB, sizes.Shared["nodejs"].MiB, agentMiB["pi"]},
		"codex": {sizes.Shared["base"].MiB, agentMiB["codex"]},
	} {
		var want float64
		for _, m := range parts {
			want += m * scale * (1 << 20)
		}
		if got := float64(payloads[a]); math.Abs(got-want) > 100 {
			t.Errorf("%s payloads = %.0f bytes, want %.0f (sizes.json at scale %g)", a, got, want, scale)
		}
	}

	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, 6)
	zw.Write(largest)
	zw.Close()
	if ratio := float64(len(largest)) / float64(z.Len()); ratio < 2.4 || ratio > 3.2 {
		t.Errorf("the largest payload (%d bytes) compresses %.2fx with gzip -6, want 2.4x to 3.2x like a binary", len(largest), ratio)
	}

	// The generator is deterministic: Nix rebuilds an agent and finds the
	// same bytes (nix build --rebuild fails otherwise).
	rebuild := []string{"build", "--rebuild", "--no-link", "path:" + filepath.Join(inputs, "llm-agents") + "#packages.x86_64-linux.pi",
		"--override-input", "nixpkgs", "path:" + filepath.Join(inputs, "nixpkgs")}
	if out, err := exec.CommandContext(ctx, "nix", rebuild...).CombinedOutput(); err != nil {
		t.Errorf("nix %s: %v\n%s", strings.Join(rebuild, " "), err, out)
	}
}

func shared(a, b []v1.Hash) int {
	in := map[v1.Hash]bool{}
	for _, h := range a {
		in[h] = true
	}
	n := 0
	for _, h := range b {
		if in[h] {
			n++
		}
	}
	return n
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
