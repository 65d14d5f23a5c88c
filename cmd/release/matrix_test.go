package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func standinArgs(t *testing.T) []string {
	root := testenv.RepoRoot(t)
	var args []string
	for name, ref := range testenv.StandinOverrides(t) {
		args = append(args, "--override-input", name+"="+ref)
	}
	return append(args, "--flake", root)
}

func TestMatrixCommand(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	outFile := filepath.Join(t.TempDir(), "github-output")
	t.Setenv("GITHUB_OUTPUT", outFile)

	out, err := run(t, append([]string{"matrix", "--json", "--agent", "pi,codex", "--runner", "aarch64-linux=arm-big"}, standinArgs(t)...)...)
	if err != nil {
		t.Fatalf("release matrix --json = %v", err)
	}
	var m flake.GitHubMatrix
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("release matrix --json printed %q: %v", out, err)
	}
	var got []string
	for _, e := range m.Include {
		got = append(got, e.Agent+"/"+string(e.System)+"@"+e.Runner)
	}
	want := "codex/x86_64-linux@ubuntu-24.04 codex/aarch64-linux@arm-big pi/x86_64-linux@ubuntu-24.04 pi/aarch64-linux@arm-big"
	if strings.Join(got, " ") != want {
		t.Errorf("matrix = %v, want %s", got, want)
	}
	outputs := stepOutputs(t, outFile)
	if outputs["matrix"] != strings.TrimSpace(out) {
		t.Errorf("matrix output = %q, want the printed JSON %q", outputs["matrix"], out)
	}
	if outputs["missing"] != "[]" {
		t.Errorf("missing output = %q, want [] (the stand-ins provide every agent)", outputs["missing"])
	}
	if outputs["agents"] != `["codex","pi"]` {
		t.Errorf("agents output = %q, want [\"codex\",\"pi\"]: each agent once, for one merge job per agent", outputs["agents"])
	}
	if outputs["selected"] != `["codex","pi"]` {
		t.Errorf("selected output = %q, want [\"codex\",\"pi\"]: every selected agent, for prune", outputs["selected"])
	}
}

// stepOutputs reads a $GITHUB_OUTPUT file written in the delimited form:
// NAME<<DELIM, the value's lines, DELIM.
func stepOutputs(t *testing.T, file string) map[string]string {
	t.Helper()
	written, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("GITHUB_OUTPUT not written: %v", err)
	}
	out := map[string]string{}
	lines := strings.Split(strings.TrimSpace(string(written)), "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			t.Fatalf("GITHUB_OUTPUT line %q is not NAME<<DELIM:\n%s", lines[i], written)
		}
		var value []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			value = append(value, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("GITHUB_OUTPUT: %s has no closing %s:\n%s", name, delim, written)
		}
		out[name] = strings.Join(value, "\n")
	}
	return out
}

// TestMatrixCommandMissing: an agent llm-agents no longer provides is named
// (after the table, in the missing output with --json), the others keep
// their targets, and asking for it alone says why it has none.
func TestMatrixCommandMissing(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	if testenv.RealInputs() {
		t.Skip("needs the stand-in llm-agents to take an agent away")
	}
	overrides := testenv.StandinOverridesWithAgents(t, func(agents string) string {
		return strings.Replace(agents, `attr = "forgecode";`, `attr = "forge-renamed";`, 1)
	})
	args := []string{"--flake", testenv.RepoRoot(t)}
	for name, ref := range overrides {
		args = append(args, "--override-input", name+"="+ref)
	}

	out, err := run(t, append([]string{"matrix", "--agent", "forge,pi"}, args...)...)
	if err != nil {
		t.Fatalf("release matrix --agent forge,pi = %v", err)
	}
	if !strings.Contains(out, "pi  ") || !strings.Contains(out, "missing: forge on x86_64-linux: llm-agents' packages.x86_64-linux has no forgecode") ||
		!strings.Contains(out, "missing: forge on aarch64-linux:") {
		t.Errorf("release matrix printed:\n%s\nwant pi's targets and forge missing on both systems", out)
	}

	outFile := filepath.Join(t.TempDir(), "github-output")
	t.Setenv("GITHUB_OUTPUT", outFile)
	if _, err := run(t, append([]string{"matrix", "--json"}, args...)...); err != nil {
		t.Fatalf("release matrix --json = %v", err)
	}
	outputs := stepOutputs(t, outFile)
	var m flake.GitHubMatrix
	if err := json.Unmarshal([]byte(outputs["matrix"]), &m); err != nil || len(m.Include) != 58 {
		t.Errorf("matrix output has %d entries (%v), want 58: every agent but forge, on both systems", len(m.Include), err)
	}
	var missing []flake.Missing
	if err := json.Unmarshal([]byte(outputs["missing"]), &missing); err != nil || len(missing) != 2 || missing[0].Agent != "forge" || missing[0].Package != "forgecode" {
		t.Errorf("missing output = %s (%v), want forge (package forgecode) on both systems", outputs["missing"], err)
	}
	gone, err := parseMissing(outputs["missing"])
	if err != nil || len(gone) != 2 || !strings.HasPrefix(gone[0], "forge on x86_64-linux: ") {
		t.Errorf("parseMissing(missing output) = %q, %v, want forge's two lines for the nightly issue", gone, err)
	}

	_, err = run(t, append([]string{"matrix", "--agent", "forge"}, args...)...)
	if err == nil || !strings.Contains(err.Error(), `no release target: llm-agents no longer provides forge: forge on x86_64-linux:`) {
		t.Errorf("release matrix --agent forge = %v, want an error saying llm-agents no longer provides it", err)
	}
}

func TestMatrixCommandErrors(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown agent", args: []string{"matrix", "--agent", "claude"}, want: `unknown agent "claude" (did you mean "claude-code"?); valid agents: amp, claude-code,`},
		{name: "unknown system", args: []string{"matrix", "--system", "aarch64-darwin"}, want: `unknown system "aarch64-darwin" (did you mean "aarch64-linux"?)`},
		{name: "bad runner", args: []string{"matrix", "--json", "--runner", "arm"}, want: `--runner "arm": want SYSTEM=LABEL`},
		{name: "bad override", args: []string{"matrix", "--override-input", "nixpkgs"}, want: "--override-input takes NAME=FLAKEREF"},
		{name: "release needs agents", args: []string{}, want: "name the agents to release with --agent a,b, or release every agent with --all"},
		{name: "push needs registry", args: []string{"--agent", "pi", "--push"}, want: "--push needs --registry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GITHUB_ACTIONS", "")
			_, err := run(t, append(tc.args, standinArgs(t)...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("release %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestMatrixChangedOnly: after pi is released, a matrix of pi and codex
// against that registry lists codex alone, and reports pi unchanged, with
// the index it has. A tag pi does not have yet puts it back in the matrix.
func TestMatrixChangedOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("releases an image: skipped with -short")
	}
	testenv.Require(t, "nix", "docker-registry")
	testenv.Setenv(t)
	reg := testenv.StartRegistry(t) + "/agent-images"
	dir := t.TempDir()
	released := filepath.Join(dir, "release.json")
	if out, err := run(t, append([]string{"--agent", "pi", "--push", "--registry", reg, "--insecure", "--sign=false", "--runtime", "none",
		"--work-dir", filepath.Join(dir, "work"), "--commit", strings.Repeat("a", 40), "--output", released}, standinArgs(t)...)...); err != nil {
		t.Fatalf("release pi = %v\n%s", err, out)
	}
	rep, err := record.ReadReport(released)
	if err != nil {
		t.Fatal(err)
	}

	outFile := filepath.Join(dir, "github-output")
	t.Setenv("GITHUB_OUTPUT", outFile)
	unchanged := filepath.Join(dir, "unchanged.json")
	changedOnly := func(extra ...string) flake.GitHubMatrix {
		t.Helper()
		args := append([]string{"matrix", "--json", "--agent", "pi,codex", "--changed-only", "--registry", reg, "--insecure", "--sign=false",
			"--commit", strings.Repeat("b", 40), "--output", unchanged}, extra...)
		out, err := run(t, append(args, standinArgs(t)...)...)
		if err != nil {
			t.Fatalf("release matrix --changed-only = %v", err)
		}
		var m flake.GitHubMatrix
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("release matrix --changed-only printed %q: %v", out, err)
		}
		return m
	}

	m := changedOnly()
	var got []string
	for _, e := range m.Include {
		got = append(got, e.Agent+"/"+string(e.System))
	}
	if strings.Join(got, " ") != "codex/x86_64-linux codex/aarch64-linux" {
		t.Errorf("matrix = %v, want codex's targets alone", got)
	}
	if agents := stepOutputs(t, outFile)["agents"]; agents != `["codex"]` {
		t.Errorf("agents output = %s, want [\"codex\"]", agents)
	}
	left, err := record.ReadReport(unchanged)
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Agents) != 1 || left.Agents[0].Agent != "pi" || left.Agents[0].Status != record.StageUnchanged ||
		!left.Agents[0].SameDerivation || left.Agents[0].Index != rep.Agents[0].Index {
		t.Errorf("unchanged report = %+v, want pi unchanged at %s", left.Agents, rep.Agents[0].Index)
	}

	// A release tag pi does not carry yet has to be written: pi is built.
	if m := changedOnly("--tag", "v9"); len(m.Include) != 4 {
		t.Errorf("matrix with --tag v9 = %+v, want pi's and codex's targets", m.Include)
	}
	// So does a git tag's semantic version series: pi carries v1.2.3
	// (asked for by name) but not 1.2.3, 1.2 or 1.
	if out, err := run(t, append([]string{"--agent", "pi", "--push", "--registry", reg, "--insecure", "--sign=false", "--runtime", "none",
		"--work-dir", filepath.Join(dir, "work"), "--commit", strings.Repeat("a", 40), "--tag", "v1.2.3"}, standinArgs(t)...)...); err != nil {
		t.Fatalf("release pi --tag v1.2.3 = %v\n%s", err, out)
	}
	if m := changedOnly("--tag", "v1.2.3"); len(m.Include) != 2 {
		t.Errorf("matrix with --tag v1.2.3 = %+v, want codex's targets alone", m.Include)
	}
	if m := changedOnly("--git-tag", "v1.2.3"); len(m.Include) != 4 {
		t.Errorf("matrix with --git-tag v1.2.3 = %+v, want pi's and codex's targets: pi lacks 1.2.3, 1.2 and 1", m.Include)
	}
}
