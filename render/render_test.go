package render

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/retention"
)

// released is an agent released to repo with an index of hex digits c.
func released(agent, repo, c string) *record.Agent {
	return &record.Agent{Agent: agent, Version: "1.0", Repository: repo + "/" + agent, Status: record.StageDone, Tags: []string{"latest"},
		Index:     v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)},
		Published: []*record.Publication{{Repository: repo + "/" + agent, Status: record.StageDone}}}
}

func agentNames(agents []*record.Agent) []string {
	var out []string
	for _, a := range agents {
		out = append(out, a.Agent)
	}
	return out
}

// TestRead reads the release.json files of several merge jobs, one of them
// written before each registry had its own entry, and one of several
// registries where the agent completed in some and failed in one.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	aa, bb, cc, dd := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64), "sha256:"+strings.Repeat("c", 64), "sha256:"+strings.Repeat("d", 64)
	// What the pipeline writes, through the one type both sides share.
	pi := &record.Report{Registry: "r", Agents: []*record.Agent{{Agent: "pi", Version: "0.70.6", Repository: "r/pi",
		Index: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, Tags: []string{"latest"}, Unchanged: true, Status: record.StageDone}}}
	if err := pi.WriteFile(filepath.Join(dir, "release-pi.json")); err != nil {
		t.Fatal(err)
	}
	write("release-codex.json", `{"agents":[{"agent":"codex","repository":"r/codex","index":"`+cc+`","tags":["latest"],"signing":{"verifyCommand":"release verify --agent codex"}},
		{"agent":"claude-code","repository":"r/claude-code","status":"failed","error":"smoke: user is root"}]}`)
	multi := &record.Report{Registries: []string{"r", "m"}, Agents: []*record.Agent{{Agent: "gemini", Repository: "r/gemini",
		Index: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("d", 64)}, Tags: []string{"latest"}, Status: record.StageFailed,
		Error: "m/gemini: pushing index: 503 Service Unavailable", Published: []*record.Publication{
			{Repository: "m/gemini", Status: record.StageFailed, Error: "pushing index: 503 Service Unavailable"},
			{Repository: "r/gemini", Status: record.StageDone, Signing: &record.Signing{VerifyCommand: "cosign verify r/gemini@" + dd}},
			{Repository: "q/gemini", Status: record.StageUnchanged},
		}}}}
	if err := multi.WriteFile(filepath.Join(dir, "release-gemini.json")); err != nil {
		t.Fatal(err)
	}
	agents, err := Read(dir)
	if err != nil {
		t.Fatalf("Read(dir) = %v", err)
	}
	if got, want := agentNames(agents), []string{"claude-code", "codex", "gemini", "pi"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Read(dir) agents = %q, want %q", got, want)
	}
	// The failed agent is in no release; the others are where they completed.
	if got, want := agentNames(Released(agents)), []string{"codex", "gemini", "pi"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Released = %q, want %q", got, want)
	}

	notes := ReleaseNotes("v1", agents)
	summary := StepSummary(agents)
	gemini := "| gemini | `r/gemini@" + dd + "`<br>`q/gemini@" + dd + "`<br>`m/gemini`: **failed**: pushing index: 503 Service Unavailable |"
	for _, want := range []string{
		gemini + " `latest` | `cosign verify r/gemini@" + dd + "` |",
		"| codex | `r/codex@" + cc + "` | `latest` | `release verify --agent codex` |",
		"| pi | `r/pi@" + aa + "` | `latest` | `release verify --agent pi` |",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("ReleaseNotes lacks %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "claude-code") {
		t.Errorf("ReleaseNotes lists claude-code, which released nowhere:\n%s", notes)
	}
	for _, want := range []string{
		gemini + "  | failed |  | latest | yes |",
		"| pi | `r/pi@" + aa + "` | 0.70.6 | done |  | latest | no |",
		"| claude-code |  |  | failed: smoke: user is root |  |  |  |",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("StepSummary lacks %q:\n%s", want, summary)
		}
	}
	outs, err := ReleaseOutputs(agents, filepath.Join(dir, "release-pi.json"))
	if want := []Output{{"digests", `{"codex":"` + cc + `","gemini":"` + dd + `","pi":"` + aa + `"}`}, {"release-json", filepath.Join(dir, "release-pi.json")}}; err != nil || !reflect.DeepEqual(outs, want) {
		t.Errorf("ReleaseOutputs = %q, %v, want %q", outs, err, want)
	}

	write("dup.json", `{"agents":[{"agent":"pi","index":"`+bb+`"}]}`)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "agent pi is in both") {
		t.Errorf("Read(duplicate agent) = %v, want an error naming pi", err)
	}
	if _, err := Read(filepath.Join(dir, "none.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing file) = %v, want not exist", err)
	}
}

// StepSummary shows every agent of a run, smoke tests included, and a row
// saying none when there are none.
func TestStepSummary(t *testing.T) {
	if got := StepSummary(nil); !strings.Contains(got, "| (none) |") {
		t.Errorf("StepSummary(nil) = %q, want a (none) row", got)
	}
	a := released("pi", "oci:dist/oci", "a")
	a.Platforms = []*record.Image{{System: "x86_64-linux", Smoke: &record.Smoke{Mode: "full", Passed: 12}}}
	got := StepSummary([]*record.Agent{a})
	if want := "| pi | `oci:dist/oci/pi@sha256:" + strings.Repeat("a", 64) + "` | 1.0 | done | x86_64-linux (smoke full: 12 passed, 0 failed) | latest | yes |"; !strings.Contains(got, want) {
		t.Errorf("StepSummary lacks %q:\n%s", want, got)
	}
}

func TestNightly(t *testing.T) {
	fail := gh.Run{ID: 2, URL: "https://github.com/acme/agent-images/actions/runs/2", Failed: []string{"codex", "pi"}, FailedJobs: []string{"matrix"}}
	withChanges := []*record.Agent{released("codex", "r", "9"), released("pi", "r", "d")}
	withChanges[0].Changes, withChanges[1].Changes = changeReports()[1], changeReports()[0]
	n := Nightly(fail, nil, withChanges[:1])
	if !n.Failed {
		t.Errorf("Nightly(failed run).Failed = false")
	}
	for name, text := range map[string]string{"Opening": n.Opening, "Again": n.Again} {
		for _, want := range []string{fail.URL, "- `codex`", "- `pi`", "- matrix", "### What changed since the last release", "#### codex 0.1.0"} {
			if !strings.Contains(text, want) {
				t.Errorf("Nightly %s lacks %q:\n%s", name, want, text)
			}
		}
	}
	if !strings.Contains(n.Opening, "This issue stays open") || !strings.Contains(n.Again, "failed again") {
		t.Errorf("Nightly texts = %q, %q: want the opening and a later failure told apart", n.Opening, n.Again)
	}

	// The run that fixes it says, as it closes the issue, what it released.
	ok := gh.Run{ID: 3, URL: "https://github.com/acme/agent-images/actions/runs/3"}
	n = Nightly(ok, nil, withChanges)
	if n.Failed || !strings.Contains(n.Fixed, ok.URL) || !strings.Contains(n.Fixed, "#### pi 0.70.6 → 0.71.0") {
		t.Errorf("Nightly(success) = %+v, want not failed, the fixed text naming run 3 and what changed", n)
	}

	// An agent llm-agents stopped providing builds nothing, so no job fails;
	// the nightly still is not a success, and the issue names the agent.
	n = Nightly(gh.Run{ID: 5, URL: "u"}, []string{"forge on aarch64-linux: llm-agents' packages.aarch64-linux has no forgecode"}, nil)
	if !n.Failed || !strings.Contains(n.Opening, "no longer provides") ||
		!strings.Contains(n.Opening, "- forge on aarch64-linux: llm-agents' packages.aarch64-linux has no forgecode") {
		t.Errorf("Nightly(missing agent) = %+v, want failed, with the missing agent listed", n)
	}

	// Thirty agents' changes still make a body GitHub takes.
	var many []*record.Agent
	for _, r := range thirtyAgents() {
		a := released(r.Agent, "r", "e")
		a.Changes = r
		many = append(many, a)
	}
	n = Nightly(gh.Run{URL: "u", Failed: []string{"pi"}}, nil, many)
	if len(n.Opening) > maxIssueBody || !strings.Contains(n.Opening, "#### agent29") {
		t.Errorf("issue body of %d bytes (GitHub takes %d), want every agent's headline within it", len(n.Opening), maxIssueBody)
	}
}

// TestWriteOutputs: under Actions, the delimited form, so a value may hold
// newlines; elsewhere name=value lines, or nothing.
func TestWriteOutputs(t *testing.T) {
	t.Setenv("GITHUB_OUTPUT", "")
	var out bytes.Buffer
	if err := WriteOutputs(&out, Output{"a", "1"}, Output{"b", "2"}); err != nil || out.String() != "a=1\nb=2\n" {
		t.Errorf("WriteOutputs outside Actions = %q, %v", out.String(), err)
	}
	if err := WriteOutputs(nil, Output{"a", "1"}); err != nil {
		t.Errorf("WriteOutputs(nil) outside Actions = %v, want nothing written", err)
	}
	file := filepath.Join(t.TempDir(), "output")
	t.Setenv("GITHUB_OUTPUT", file)
	if err := WriteOutputs(nil, Output{"matrix", "line 1\nline 2"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	name, delim, _ := strings.Cut(lines[0], "<<")
	if len(lines) != 4 || name != "matrix" || !strings.HasPrefix(delim, "ghadelim_") || lines[1] != "line 1" || lines[2] != "line 2" || lines[3] != delim {
		t.Errorf("$GITHUB_OUTPUT = %q, want matrix in the delimited form", data)
	}
}

// TestDocsShowRetentionPolicy keeps docs/retention.md's table the one the
// code applies.
func TestDocsShowRetentionPolicy(t *testing.T) {
	page, err := os.ReadFile("../docs/retention.md")
	if err != nil {
		t.Fatal(err)
	}
	want := PolicyMarkdown(retention.Default(time.Now()))
	if !strings.Contains(string(page), want) {
		t.Errorf("docs/retention.md lacks the retention policy table; put this in it:\n%s", want)
	}
}

// PolicyMarkdown is the retention policy as docs/retention.md shows it: one row
// per rule.
func PolicyMarkdown(p retention.Policy) string {
	var b strings.Builder
	b.WriteString("| class | tags | keeps its manifest |\n|---|---|---|\n")
	for _, r := range retention.Rules {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.Class, r.Tags, r.Kept(p))
	}
	return b.String()
}
