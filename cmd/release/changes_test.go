package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/render"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestReleaseReportsChanges releases pi twice into Debian's registry, as a
// workflow would (under GitHub Actions, with a step summary): the stand-in
// flake, then a copy of its llm-agents where pi has another version and
// carries an extra package. The second release compares what it published
// with what latest named before it moved, after signing, and release.json,
// the step summary, what it prints and the GitHub Release notes made from
// its release.json all say what changed: the version, the growth (flagged
// over --size-threshold), the store paths and the moved input. The first
// release has nothing to compare with, and says nothing.
func TestReleaseReportsChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end release: skipped with -short")
	}
	testenv.Require(t, "nix", "docker-registry")
	testenv.Setenv(t)
	reg := testenv.StartRegistry(t)
	dir := t.TempDir()
	const password = "changes-test"
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "cosign.key")
	writeFile(t, key, string(keys.PrivateBytes))
	prefix := reg + "/acme/agent-images"

	standin := filepath.Join(testenv.RepoRoot(t), "testdata", "standin", "llm-agents")
	oldVersion := piVersion(t, standin)
	const newVersion = "99.0.0"
	changed := changedLLMAgents(t, standin, filepath.Join(dir, "llm-agents"), oldVersion, newVersion)

	type outcome struct {
		out, summary string
		agent        *record.Agent
		report       string
	}
	release := func(llmAgents, commit string, extra ...string) outcome {
		t.Helper()
		o := outcome{report: filepath.Join(dir, commit[:7]+".json")}
		summary := filepath.Join(dir, commit[:7]+".summary.md")
		env := []string{"COSIGN_PASSWORD=" + password, "DOCKER_CONFIG=" + filepath.Join(dir, "docker"),
			"GITHUB_ACTIONS=true", "GITHUB_REPOSITORY=acme/agent-images", "GITHUB_SERVER_URL=https://github.com",
			"GITHUB_SHA=" + commit, "GITHUB_STEP_SUMMARY=" + summary, "GITHUB_OUTPUT=" + filepath.Join(dir, commit[:7]+".output")}
		args := []string{"--agent", "pi", "--system", "x86_64-linux", "--push", "--registry", prefix, "--insecure", "--key", key,
			"--runtime", "none", "--flake", testenv.RepoRoot(t), "--work-dir", filepath.Join(dir, "work"), "--output", o.report,
			"--override-input", "llm-agents=path:" + llmAgents}
		for _, input := range []string{"nixpkgs", "llm-agents/nixpkgs"} {
			if ref, ok := testenv.StandinOverrides(t)[input]; ok {
				args = append(args, "--override-input", input+"="+ref)
			}
		}
		out, err := execRelease(t, env, append(args, extra...)...)
		if err != nil {
			t.Fatalf("release %s: %v\n%s", commit[:7], err, out)
		}
		o.out = out
		data, _ := os.ReadFile(summary)
		o.summary = string(data)
		rep, err := record.ReadReport(o.report)
		if err != nil || len(rep.Agents) != 1 {
			t.Fatalf("release.json of %s: %v, %+v", commit[:7], err, rep)
		}
		o.agent = rep.Agents[0]
		return o
	}

	first := release(standin, "1111111111111111111111111111111111111111", "--size-threshold", "1%")
	if first.agent.Changes != nil || len(first.agent.Notes) > 0 || strings.Contains(first.summary, "What changed") {
		t.Errorf("first release: changes %+v, notes %q, summary\n%s\nwant nothing to compare with", first.agent.Changes, first.agent.Notes, first.summary)
	}

	second := release(changed, "2222222222222222222222222222222222222222", "--size-threshold", "1%")
	a := second.agent
	c := a.Changes
	if c == nil {
		t.Fatalf("second release: no changes in release.json (notes %q)\n%s", a.Notes, second.out)
	}
	if a.Status != record.StageDone || len(a.Notes) > 0 {
		t.Errorf("second release: status %s, notes %q; want done without notes", a.Status, a.Notes)
	}
	if c.From.Digest != first.agent.Index.String() || c.To.Digest != a.Index.String() || c.From.Tag != "latest" ||
		c.From.Version != oldVersion || c.To.Version != newVersion {
		t.Errorf("changes compare %+v with %+v; want latest as it was (%s, %s) with this release (%s, %s)",
			c.From, c.To, first.agent.Index, oldVersion, a.Index, newVersion)
	}
	if len(c.Platforms) != 1 {
		t.Fatalf("changes have platforms %+v, want linux/amd64", c.Platforms)
	}
	p := c.Platforms[0]
	before, after := first.agent.Platforms[0].Size, a.Platforms[0].Size
	if p.Platform != "linux/amd64" || p.From == nil || p.To == nil || p.From.Size != before || p.To.Size != after ||
		p.SizeDelta != after-before || !p.OverThreshold {
		t.Errorf("linux/amd64 change = %+v; want %d -> %d (release.json's sizes), over 1%%", p, before, after)
	}
	if got, want := namesOf(p.Added), []string{"agent-assets-1.0", "pi-" + newVersion}; !p.StorePathsCompared || !slices.Equal(got, want) {
		t.Errorf("store paths added = %q, want %q", got, want)
	}
	if got, want := namesOf(p.Removed), []string{"pi-" + oldVersion}; !slices.Equal(got, want) {
		t.Errorf("store paths removed = %q, want %q", got, want)
	}
	if !c.InputsCompared || len(c.Inputs) != 1 || c.Inputs[0].Name != "llm-agents" || c.Inputs[0].To.NarHash != narHash(t, changed) {
		t.Errorf("inputs moved = %+v, want llm-agents to %s", c.Inputs, narHash(t, changed))
	}

	for _, want := range []string{
		"### What changed since the last release",
		"> [!WARNING]",
		"> - **pi** linux/amd64: +",
		"#### pi " + oldVersion + " → " + newVersion,
		"agent-assets-1.0",
		"| `llm-agents` |",
	} {
		if !strings.Contains(second.summary, want) {
			t.Errorf("step summary lacks %q:\n%s", want, second.summary)
		}
	}
	for _, want := range []string{"since latest (" + first.agent.Index.String()[:19] + "): pi " + oldVersion + " -> " + newVersion, "! linux/amd64 grew +"} {
		if !strings.Contains(second.out, want) {
			t.Errorf("release printed no %q:\n%s", want, second.out)
		}
	}

	// The GitHub Release of a tag is made from the merge jobs' release.json.
	published, err := render.Read(second.report)
	if err != nil || len(render.Released(published)) != 1 || published[0].Changes == nil {
		t.Fatalf("render.Read(%s) = %+v, %v; want pi released with its changes", second.report, published, err)
	}
	if notes := render.ReleaseNotes("v1.2.3", published); !strings.Contains(notes, "#### pi "+oldVersion+" → "+newVersion) {
		t.Errorf("release notes lack what changed:\n%s", notes)
	}
}

// A threshold that is not a percentage is refused before the flake is read
// (an empty directory here); build, which publishes no index, has none.
func TestSizeThresholdFlag(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	for _, cmd := range [][]string{nil, {"merge"}} {
		for threshold, want := range map[string]string{
			"10":   `--size-threshold: size threshold "10": give a percentage of the previous size, such as 10%`,
			"-5%":  "give a percentage of 0% or more",
			"big%": "give a percentage of 0% or more",
		} {
			args := append(append([]string{}, cmd...), "--agent", "pi", "--push", "--registry", "localhost:5000/x",
				"--flake", t.TempDir(), "--sign=false", "--size-threshold", threshold)
			if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("release %s = %v, want an error containing %q", strings.Join(args, " "), err, want)
			}
		}
	}
	if _, err := run(t, "build", "--size-threshold", "10%"); err == nil || !strings.Contains(err.Error(), "unknown flag: --size-threshold") {
		t.Errorf("release build --size-threshold = %v, want an unknown flag", err)
	}
}
