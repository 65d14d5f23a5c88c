package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/record"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func storePath(hashChar, name, version string) record.StorePath {
	return record.StorePath{Path: "/nix/store/" + strings.Repeat(hashChar, 32) + "-" + name + "-" + version, Name: name, Version: version}
}

// changeReports are two agents' reports: pi changed in every way (one
// platform over the 10% threshold), codex is the release it was before.
func changeReports() []*record.Changes {
	threshold := 0.10
	repo := "ghcr.io/acme/agent-images/"
	pi := &record.Changes{
		Agent:         "pi",
		From:          record.Compared{Repository: repo + "pi", Digest: "sha256:" + strings.Repeat("a", 64), Tag: "2026-05-01", Version: "0.70.6"},
		To:            record.Compared{Repository: repo + "pi", Digest: "sha256:" + strings.Repeat("d", 64), Tag: "latest", Version: "0.71.0"},
		SizeThreshold: &threshold,
		Platforms: []record.PlatformChange{
			{
				Platform:  "linux/amd64",
				From:      &record.ImageSize{Digest: "sha256:" + strings.Repeat("b", 64), Size: 1_300_017},
				To:        &record.ImageSize{Digest: "sha256:" + strings.Repeat("e", 64), Size: 1_564_891},
				SizeDelta: 264_874, SizeGrowth: 264_874.0 / 1_300_017, OverThreshold: true,
				StorePathsCompared: true,
				Added:              []record.StorePath{storePath("0", "agent-assets", "1.0"), storePath("4", "pi", "0.71.0")},
				Removed:            []record.StorePath{storePath("i", "pi", "0.70.6")},
			},
			{
				Platform:  "linux/arm64",
				From:      &record.ImageSize{Digest: "sha256:" + strings.Repeat("c", 64), Size: 1_247_835},
				To:        &record.ImageSize{Digest: "sha256:" + strings.Repeat("f", 64), Size: 1_250_000},
				SizeDelta: 2165, SizeGrowth: 2165.0 / 1_247_835,
			},
		},
		InputsCompared: true,
		Inputs: []record.InputChange{{Name: "llm-agents",
			From: record.Pin{NarHash: "sha256-StX9CbIyd4OlIgU4/5bO+GuklGMlSieFKc/8n2VQ+5Q="},
			To:   record.Pin{NarHash: "sha256-EZUuKZ5+ijT08Yyq6ZgeVvLk86lZSG4+2/OKti/Y8Rk="}}},
		Notes: []string{"linux/arm64: 2026-05-01 has no SBOM attestation, so its store paths are not compared"},
	}
	same := record.Compared{Repository: repo + "codex", Digest: "sha256:" + strings.Repeat("9", 64), Tag: "latest", Version: "0.1.0"}
	codex := &record.Changes{Agent: "codex", From: same, To: same, Verified: true, InputsCompared: true}
	return []*record.Changes{pi, codex}
}

// golden compares got with testdata/file, or rewrites it under -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./render -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./render -update rewrites it):\n%s", path, got)
	}
}

func TestChangesSectionGolden(t *testing.T) {
	golden(t, "changes.golden.md", ChangesSection(changeReports()))
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
	got := ChangesSection([]*record.Changes{r})
	if n := strings.Count(got, "\n+ /nix/store/"); n != maxPathsShown {
		t.Errorf("ChangesSection lists %d added paths, want %d", n, maxPathsShown)
	}
	if want := fmt.Sprintf("# … and %d more: release diff pi lists them all", 101-maxPathsShown); !strings.Contains(got, want) {
		t.Errorf("ChangesSection lacks %q:\n%s", want, got)
	}
}

// thirtyAgents are a nightly's worth of reports after a nixpkgs update:
// each agent's two platforms changed 100 store paths.
func thirtyAgents() []*record.Changes {
	var out []*record.Changes
	for i := range 30 {
		r := changeReports()[0]
		r.Agent = fmt.Sprintf("agent%02d", i)
		for p := range r.Platforms {
			r.Platforms[p].StorePathsCompared = true
			r.Platforms[p].Added = nil
			for j := range 100 {
				r.Platforms[p].Added = append(r.Platforms[p].Added, storePath("a", fmt.Sprintf("some-library-with-a-long-name-%03d", j), "1.2.3"))
			}
		}
		out = append(out, r)
	}
	return out
}

// TestChangesSectionWithin: what fits is the full section; then the
// section without store path lists; then as many agents as fit, and a line
// naming how many more there are.
func TestChangesSectionWithin(t *testing.T) {
	small := changeReports()
	if got, want := ChangesSectionWithin(small, maxIssueBody), ChangesSection(small); got != want {
		t.Errorf("ChangesSectionWithin(two agents, %d) is not the full section", maxIssueBody)
	}
	many := thirtyAgents()
	full := ChangesSection(many)
	if len(full) <= maxIssueBody {
		t.Fatalf("the full section of 30 agents is %d bytes: the test needs more than %d", len(full), maxIssueBody)
	}
	tests := []struct {
		name   string
		limit  int
		agents int
	}{
		{"an issue comment", maxIssueBody, 30},
		{"a tight body", 4000, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChangesSectionWithin(many, tt.limit)
			if len(got) > tt.limit || got == "" {
				t.Fatalf("ChangesSectionWithin(30 agents, %d) is %d bytes", tt.limit, len(got))
			}
			if strings.Contains(got, "<details>") {
				t.Errorf("ChangesSectionWithin(30 agents, %d) kept the store path lists", tt.limit)
			}
			shown := strings.Count(got, "\n#### ")
			switch {
			case tt.agents > 0 && shown != tt.agents:
				t.Errorf("ChangesSectionWithin(30 agents, %d) shows %d agents, want %d", tt.limit, shown, tt.agents)
			case tt.agents < 0 && (shown == 0 || shown == 30 || !strings.Contains(got, fmt.Sprintf("… and %d more agents", 30-shown))):
				t.Errorf("ChangesSectionWithin(30 agents, %d) shows %d agents and says %q, want some and how many more", tt.limit, shown, got[max(0, len(got)-200):])
			}
		})
	}
}

func TestNotesSection(t *testing.T) {
	if got := notesSection([]*record.Agent{{Agent: "pi"}}); got != "" {
		t.Errorf("notesSection(no notes) = %q, want nothing", got)
	}
	got := notesSection([]*record.Agent{{Agent: "pi", Notes: []string{"what changed is not reported:\nreading"}}, {Agent: "codex", Notes: []string{"a", "b"}}})
	want := "\nNotes:\n\n- **codex**: a\n- **codex**: b\n- **pi**: what changed is not reported: reading\n"
	if got != want {
		t.Errorf("notesSection = %q, want %q", got, want)
	}
}

// Every body a release writes carries what changed: the notes of a tag's
// release and the summary table of a run.
func TestReleaseNotesAndSummaryCarryChanges(t *testing.T) {
	agents := []*record.Agent{
		released("codex", "ghcr.io/acme/agent-images/codex", "9"),
		released("pi", "ghcr.io/acme/agent-images/pi", "d"),
	}
	agents[0].Notes = []string{"what changed since latest (sha256:…) is not reported: reading …: 500"}
	agents[1].Changes = changeReports()[0]
	for name, body := range map[string]string{"ReleaseNotes": ReleaseNotes("v1.2.0", agents), "StepSummary": StepSummary(agents)} {
		for _, want := range []string{
			"### What changed since the last release",
			"> - **pi** linux/amd64: +258.7 KiB (+20.4%), over 10%",
			"#### pi 0.70.6 → 0.71.0",
			"- **codex**: what changed since latest",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, body)
			}
		}
	}
	// A year of changes does not make a release GitHub refuses.
	var big []*record.Agent
	for _, r := range thirtyAgents() {
		for range 3 {
			a := released(r.Agent, "r", "e")
			a.Changes = r
			big = append(big, a)
		}
	}
	if n := len(ReleaseNotes("v1.2.0", big)); n > maxReleaseBody {
		t.Errorf("ReleaseNotes of 90 changed agents is %d bytes, GitHub takes %d", n, maxReleaseBody)
	}
}

// TestChangesTextGolden renders the report release.json carries
// (testdata/changes-report.json, the changes package's golden JSON) for a
// terminal, as release diff prints it.
func TestChangesTextGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "changes-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep record.Changes
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := ChangesText(&b, &rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "changes.golden.txt", b.String())
}

func TestChangesTextSameRelease(t *testing.T) {
	same := record.Compared{Repository: "ghcr.io/o/agent-images/pi", Digest: "sha256:" + strings.Repeat("a", 64), Version: "0.70.6"}
	var b bytes.Buffer
	if err := ChangesText(&b, &record.Changes{Agent: "pi", From: same, To: same}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "pi 0.70.6 (version unchanged)") || !strings.Contains(got, "nothing changed") {
		t.Errorf("ChangesText of one release against itself =\n%s\nwant it to say nothing changed", got)
	}
}
