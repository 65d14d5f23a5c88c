package flake_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

func TestParseVersion(t *testing.T) {
	for _, tt := range []struct {
		out, want      string
		outInstallable string
		wantErr        string
	}{
		{out: "nix (Nix) 2.26.3\n", want: "Nix 2.26.3", outInstallable: "/d.drv^out"},
		{out: "nix (Nix) 2.8.0", want: "Nix 2.8.0", outInstallable: "/d.drv"},
		{out: "nix (Nix) 2.13.0", want: "Nix 2.13.0", outInstallable: "/d.drv^out"},
		{out: "nix (Nix) 2.12.1", want: "Nix 2.12.1", outInstallable: "/d.drv"},
		{out: "nix (Nix) 2.31.0pre20251001_abc", want: "Nix 2.31.0", outInstallable: "/d.drv^out"},
		{out: "nix (Determinate Nix 3.6.2) 2.29.0", want: "Determinate Nix 2.29.0", outInstallable: "/d.drv^out"},
		{out: "nix (Lix, like Nix) 2.91.1", want: "Lix 2.91.1", outInstallable: "/d.drv^out"},
		{out: "nix (Nix) 2.3.16", wantErr: "older than Nix 2.8.0"},
		{out: "nix-env (Nix) 2.26.3", wantErr: "want \"nix (Nix) 2.x.y\""},
		{out: "", wantErr: "want"},
	} {
		t.Run(tt.out, func(t *testing.T) {
			v, err := flake.ParseVersion(tt.out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseVersion(%q) = %v, %v, want an error containing %q", tt.out, v, err, tt.wantErr)
				}
				return
			}
			if err != nil || v.String() != tt.want {
				t.Fatalf("ParseVersion(%q) = %v, %v, want %s", tt.out, v, err, tt.want)
			}
			if got := v.OutInstallable("/d.drv"); got != tt.outInstallable {
				t.Errorf("%s: OutInstallable(/d.drv) = %s, want %s", v, got, tt.outInstallable)
			}
		})
	}
}

// TestRealiseOnEveryNix builds a new derivation with each nix of the test
// bed, as release realises an image: the output is built and named, whatever
// the version makes of a bare .drv path.
func TestRealiseOnEveryNix(t *testing.T) {
	for _, n := range testenv.Nixes(t) {
		t.Run(n.Name, func(t *testing.T) {
			n.Use(t)
			ctx := context.Background()
			v, err := flake.DetectVersion(ctx, flake.Run)
			if err != nil {
				t.Fatal(err)
			}
			// A derivation no earlier run built: the time is in it.
			stamp := time.Now().Format(time.RFC3339Nano)
			expr := `(derivation { name = "realise-test"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ` + stamp + ` > $out" ]; }).drvPath`
			out, err := flake.Run(ctx, "eval", "--impure", "--raw", "--expr", expr)
			if err != nil {
				t.Fatal(err)
			}
			drv := strings.TrimSpace(string(out))
			if v.AtLeast(2, 15) {
				// Why OutInstallable exists: a bare path is the file itself.
				out, err := flake.Run(ctx, "build", "--json", "--no-link", drv)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 || got[0] != drv {
					t.Errorf("%s: nix build --json %s printed %s, want the derivation file itself", v, drv, out)
				}
			}
			link := filepath.Join(t.TempDir(), "result")
			outs, err := flake.Realise(ctx, flake.Run, v, link, drv)
			path := outs[drv]
			if err != nil {
				t.Fatalf("%s: Realise(%s) = %v", v, drv, err)
			}
			data, err := os.ReadFile(path)
			if err != nil || strings.TrimSpace(string(data)) != stamp {
				t.Errorf("%s: Realise(%s) = %s holding %q (%v), want the built output holding %q", v, drv, path, data, err, stamp)
			}
			if target, err := os.Readlink(link); err != nil || target != path {
				t.Errorf("%s: out-link %s -> %s (%v), want %s", v, link, target, err, path)
			}
			// Several in one process (what the store holds, on a push):
			// one out-link each, numbered (Nix 2.8 numbers them in its
			// own order, not the installables').
			out, err = flake.Run(ctx, "eval", "--impure", "--raw", "--expr", strings.Replace(expr, stamp, stamp+"-2", 1))
			if err != nil {
				t.Fatal(err)
			}
			drv2 := strings.TrimSpace(string(out))
			// In a directory not made yet, as the builder's out/held/.
			all := filepath.Join(link+"-held", "conf")
			outs, err = flake.Realise(ctx, flake.Run, v, all, drv, drv2)
			if err != nil || outs[drv] != path || outs[drv2] == "" || outs[drv2] == path {
				t.Fatalf("%s: Realise(%s, %s) = %v, %v; want %s and another output", v, drv, drv2, outs, err, path)
			}
			var linked []string
			for _, l := range []string{all, all + "-1"} {
				target, err := os.Readlink(l)
				if err != nil {
					t.Errorf("%s: out-link %s: %v", v, l, err)
				}
				linked = append(linked, target)
			}
			if !slices.Contains(linked, outs[drv]) || !slices.Contains(linked, outs[drv2]) {
				t.Errorf("%s: out-links point to %q, want %s and %s", v, linked, outs[drv], outs[drv2])
			}
		})
	}
}

// TestMetadataOnEveryNix reads the committed lock of this repository with
// each nix of the test bed: every input, a nested one too, is pinned.
func TestMetadataOnEveryNix(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range testenv.Nixes(t) {
		t.Run(n.Name, func(t *testing.T) {
			n.Use(t)
			// Without overrides: the lock is read, nothing is fetched.
			meta, err := flake.Flake{Ref: "path:" + root}.Metadata(context.Background(), flake.Run)
			if err != nil {
				t.Fatal(err)
			}
			inputs := meta.Inputs
			for _, path := range []string{"nixpkgs", "llm-agents", "llm-agents/nixpkgs", "llm-agents/bun2nix"} {
				if in := inputs[path]; in.Rev == "" || !strings.HasPrefix(in.NarHash, "sha256-") {
					t.Errorf("Inputs()[%s] = %+v, want a revision and a NAR hash from flake.lock", path, in)
				}
			}
			if meta.LastModified.IsZero() {
				t.Error("LastModified is zero")
			}
		})
	}
}
