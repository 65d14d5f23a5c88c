package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/internal/testenv"
	"github.com/nothingnesses/agent-images/matrix"
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
	var m matrix.GitHubMatrix
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
	written, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatalf("GITHUB_OUTPUT not written: %v", err)
	}
	// The delimited form: matrix<<DELIM, the value, DELIM; then the agents.
	lines := strings.Split(strings.TrimSpace(string(written)), "\n")
	delim, ok := strings.CutPrefix(lines[0], "matrix<<")
	if !ok || len(lines) != 6 || lines[1] != strings.TrimSpace(out) || lines[2] != delim {
		t.Errorf("GITHUB_OUTPUT = %q, want matrix<<DELIM, the printed JSON, DELIM", written)
	}
	if delim, ok := strings.CutPrefix(lines[3], "agents<<"); !ok || lines[4] != `["codex","pi"]` || lines[5] != delim {
		t.Errorf("GITHUB_OUTPUT = %q, then want agents<<DELIM, [\"codex\",\"pi\"], DELIM", written)
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
