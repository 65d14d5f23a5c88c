package gh

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/changes"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func storePath(hashChar, name, version string) changes.StorePath {
	return changes.StorePath{Path: "/nix/store/" + strings.Repeat(hashChar, 32) + "-" + name + "-" + version, Name: name, Version: version}
}

// changeReports are two agents' reports: pi changed in every way (one
// platform over the 10% threshold), codex is the release it was before.
func changeReports() []*changes.Report {
	threshold := 0.10
	repo := "ghcr.io/acme/agent-images/"
	pi := &changes.Report{
		Agent:         "pi",
		From:          changes.Release{Repository: repo + "pi", Digest: "sha256:" + strings.Repeat("a", 64), Tag: "2026-05-01", Version: "0.70.6"},
		To:            changes.Release{Repository: repo + "pi", Digest: "sha256:" + strings.Repeat("d", 64), Tag: "latest", Version: "0.71.0"},
		SizeThreshold: &threshold,
		Platforms: []changes.PlatformChange{
			{
				Platform:  "linux/amd64",
				From:      &changes.Image{Digest: "sha256:" + strings.Repeat("b", 64), Size: 1_300_017},
				To:        &changes.Image{Digest: "sha256:" + strings.Repeat("e", 64), Size: 1_564_891},
				SizeDelta: 264_874, SizeGrowth: 264_874.0 / 1_300_017, OverThreshold: true,
				StorePathsCompared: true,
				Added:              []changes.StorePath{storePath("0", "agent-assets", "1.0"), storePath("4", "pi", "0.71.0")},
				Removed:            []changes.StorePath{storePath("i", "pi", "0.70.6")},
			},
			{
				Platform:  "linux/arm64",
				From:      &changes.Image{Digest: "sha256:" + strings.Repeat("c", 64), Size: 1_247_835},
				To:        &changes.Image{Digest: "sha256:" + strings.Repeat("f", 64), Size: 1_250_000},
				SizeDelta: 2165, SizeGrowth: 2165.0 / 1_247_835,
			},
		},
		InputsCompared: true,
		Inputs: []changes.InputChange{{Name: "llm-agents",
			From: changes.Pin{NarHash: "sha256-StX9CbIyd4OlIgU4/5bO+GuklGMlSieFKc/8n2VQ+5Q="},
			To:   changes.Pin{NarHash: "sha256-EZUuKZ5+ijT08Yyq6ZgeVvLk86lZSG4+2/OKti/Y8Rk="}}},
		Notes: []string{"linux/arm64: 2026-05-01 has no SBOM attestation, so its store paths are not compared"},
	}
	same := changes.Release{Repository: repo + "codex", Digest: "sha256:" + strings.Repeat("9", 64), Tag: "latest", Version: "0.1.0"}
	codex := &changes.Report{Agent: "codex", From: same, To: same, Verified: true, InputsCompared: true}
	return []*changes.Report{pi, codex}
}

func TestChangesSectionGolden(t *testing.T) {
	got := ChangesSection(changeReports())
	path := filepath.Join("testdata", "changes.golden.md")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./gh -run TestChangesSectionGolden -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("ChangesSection differs from %s (-update rewrites it):\n%s", path, got)
	}
}

func TestChangesSection(t *testing.T) {
	if got := ChangesSection(nil); got != "" {
		t.Errorf("ChangesSection(nil) = %q, want nothing", got)
	}
	reports := changeReports()
	got := ChangesSection(reports)
	for _, want := range []string{
		"> [!WARNING]\n> Images grew more than the size threshold:\n> - **pi** linux/amd64: +258.7 KiB (+20.4%), over 10%\n\n",
		"#### pi 0.70.6 → 0.71.0",
		"| linux/amd64 | 1.2 MiB | 1.5 MiB | +258.7 KiB (+20.4%) **over 10%** | +2 −1 |",
		"| linux/arm64 | 1.2 MiB | 1.2 MiB | +2.1 KiB (+0.2%) | not compared |",
		"| `llm-agents` | `sha256-StX9CbIyd4OlIgU4/5bO+GuklGMlSieFKc/8n2VQ+5Q=` | `sha256-EZUuKZ5+ijT08Yyq6ZgeVvLk86lZSG4+2/OKti/Y8Rk=` |",
		"```diff\n+ /nix/store/00000000000000000000000000000000-agent-assets-1.0\n- /nix/store/iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii-pi-0.70.6\n+ /nix/store/44444444444444444444444444444444-pi-0.71.0\n```",
		"attestations read unverified",
		"#### codex 0.1.0\n\nUnchanged:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ChangesSection lacks %q:\n%s", want, got)
		}
	}

	// Without growth over the threshold there is no warning.
	reports[0].Platforms[0].OverThreshold = false
	if got := ChangesSection(reports); strings.Contains(got, "[!WARNING]") || strings.Contains(got, "**over") {
		t.Errorf("ChangesSection without growth over the threshold warns:\n%s", got)
	}
}

// TestChangesSectionCapsStorePaths: a nixpkgs update changes hundreds of
// paths per agent; the body lists a few and says how many more there are.
func TestChangesSectionCapsStorePaths(t *testing.T) {
	r := changeReports()[0]
	r.Platforms[0].Added = nil
	for i := range 100 {
		r.Platforms[0].Added = append(r.Platforms[0].Added, storePath("a", fmt.Sprintf("lib%03d", i), "1"))
	}
	got := ChangesSection([]*changes.Report{r})
	if n := strings.Count(got, "\n+ /nix/store/"); n != maxPathsShown {
		t.Errorf("ChangesSection lists %d added paths, want %d", n, maxPathsShown)
	}
	if want := fmt.Sprintf("# … and %d more: release diff pi lists them all", 101-maxPathsShown); !strings.Contains(got, want) {
		t.Errorf("ChangesSection lacks %q:\n%s", want, got)
	}
}
