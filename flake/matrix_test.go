package flake

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func fixtureTargets(t *testing.T) []Target {
	t.Helper()
	data, err := os.ReadFile("testdata/release-set.json")
	if err != nil {
		t.Fatal(err)
	}
	var gotArgs []string
	fake := func(_ context.Context, args ...string) ([]byte, error) {
		gotArgs = args
		return data, nil
	}
	targets, err := Load(context.Background(), Flake{Ref: "/src", Overrides: map[string]string{"nixpkgs": "path:/n"}}, withNix(fake))
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	want := []string{"eval", "--json", "/src#packages", "--apply", releaseSetExpr, "--override-input", "nixpkgs", "path:/n"}
	if strings.Join(gotArgs, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("Load ran nix %q, want %q", gotArgs, want)
	}
	return targets
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test ./matrix -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\ngot  %s\nwant %s", name, got, want)
	}
}

func TestGitHubMatrixGolden(t *testing.T) {
	targets := fixtureTargets(t)
	var buf bytes.Buffer
	if err := ForGitHub(targets, nil).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "matrix.golden.json", buf.Bytes())

	runners := map[System]string{Aarch64Linux: "my-arm"}
	for _, e := range ForGitHub(targets, runners).Include {
		want := DefaultRunners[e.System]
		if e.System == Aarch64Linux {
			want = "my-arm"
		}
		if e.Runner != want {
			t.Errorf("runner for %s/%s = %q, want %q", e.Agent, e.System, e.Runner, want)
		}
	}
}

func TestTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, fixtureTargets(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.golden.txt", buf.Bytes())
}

func TestSelect(t *testing.T) {
	targets := fixtureTargets(t)
	tests := []struct {
		name    string
		agents  []string
		systems []System
		want    []string
		wantErr string
	}{
		{name: "all", want: []string{"claude-code/x86_64-linux", "claude-code/aarch64-linux", "codex/x86_64-linux", "opencode/x86_64-linux", "opencode/aarch64-linux", "pi/x86_64-linux", "pi/aarch64-linux"}},
		{name: "one agent", agents: []string{"pi"}, want: []string{"pi/x86_64-linux", "pi/aarch64-linux"}},
		{name: "agent and system", agents: []string{"pi", "codex"}, systems: []System{Aarch64Linux}, want: []string{"pi/aarch64-linux"}},
		{name: "typo suggests", agents: []string{"claude"}, wantErr: `unknown agent "claude" (did you mean "claude-code"?); valid agents: claude-code, codex, opencode, pi`},
		{name: "far off lists only", agents: []string{"zzzzzzzzzz"}, wantErr: `unknown agent "zzzzzzzzzz"; valid agents:`},
		{name: "unknown system", systems: []System{"x86_64-darwin"}, wantErr: `unknown system "x86_64-darwin" (did you mean "x86_64-linux"?)`},
		{name: "nothing left", agents: []string{"codex"}, systems: []System{Aarch64Linux}, wantErr: "no release target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(targets, tc.agents, tc.systems)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Select(%v, %v) error = %v, want containing %q", tc.agents, tc.systems, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select(%v, %v) = %v", tc.agents, tc.systems, err)
			}
			var names []string
			for _, t := range got {
				names = append(names, t.String())
			}
			if strings.Join(names, " ") != strings.Join(tc.want, " ") {
				t.Errorf("Select(%v, %v) = %v, want %v", tc.agents, tc.systems, names, tc.want)
			}
		})
	}
	var ue *UnknownError
	if _, err := Select(targets, []string{"pie"}, nil); !errors.As(err, &ue) || ue.Closest != "pi" {
		t.Errorf("Select(pie) = %v, want *UnknownError suggesting pi", err)
	}
}

func TestParseRejectsMissingMainProgram(t *testing.T) {
	_, err := Parse([]byte(`{"x86_64-linux":{"pi":{"attr":"pi"}}}`))
	if err == nil || !strings.Contains(err.Error(), "mainProgram") {
		t.Errorf("Parse(no mainProgram) = %v, want an error naming mainProgram", err)
	}
}

// TestLoadFromFlake evaluates the real flake against the stand-in inputs.
func TestLoadFromFlake(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	root := testenv.RepoRoot(t)
	targets, err := Load(context.Background(), Flake{Ref: root, Overrides: testenv.StandinOverrides(t)})
	if err != nil {
		t.Fatalf("Load(%s) = %v", root, err)
	}
	if missing, err := loadMissing(context.Background(), Flake{Ref: root, Overrides: testenv.StandinOverrides(t)}); err != nil || len(missing) != 0 {
		t.Errorf("LoadMissing = %v, %v, want nothing missing from the stand-ins", missing, err)
	}
	if got := len(Agents(targets)); got != 30 {
		t.Errorf("Load found %d agents, want 30", got)
	}
	if len(targets) != 60 {
		t.Errorf("Load found %d targets, want 60 (30 agents x 2 systems)", len(targets))
	}
	for _, tg := range targets {
		if strings.HasPrefix(tg.Agent, "test-") || !tg.Image.Release {
			t.Errorf("target %s is not a release image", tg)
		}
		if tg.Agent == "claude-code" && (tg.Image.MainProgram != "claude" || !tg.Image.Unfree || tg.Image.Name != "Claude Code") {
			t.Errorf("claude-code = %+v, want main program claude, unfree, name Claude Code", tg.Image)
		}
	}
}

// A consumer names its package my-pi and its image acme/pi-custom: the
// agent is the attribute, what --agent selects and where it is pushed.
func TestParseNamesAgentsByAttribute(t *testing.T) {
	targets, err := Parse([]byte(`{"x86_64-linux":{"my-pi":{"attr":"pi-custom","imageName":"acme/pi-custom","mainProgram":"pi","release":true,"drvPath":"/nix/store/00000000000000000000000000000000-pi.tar.gz.drv"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 1 || targets[0].Agent != "my-pi" || targets[0].Image.Attr != "my-pi" {
		t.Fatalf("Parse = %+v, want agent my-pi with Attr my-pi", targets)
	}
	if _, err := Select(targets, []string{"my-pi"}, nil); err != nil {
		t.Errorf("Select(my-pi) = %v", err)
	}
}

func TestParseMissing(t *testing.T) {
	got, err := ParseMissing([]byte(`{"aarch64-linux":{"forge":{"package":"forgecode","reason":"gone"},"pi":{"package":"pi","reason":"dropped"}},
		"x86_64-linux":{"forge":{"package":"forgecode","reason":"gone"}},"aarch64-darwin":{"x":{"package":"x","reason":"r"}}}`))
	if err != nil {
		t.Fatalf("ParseMissing = %v", err)
	}
	var names []string
	for _, m := range got {
		names = append(names, m.String())
	}
	want := "forge on x86_64-linux: gone|forge on aarch64-linux: gone|pi on aarch64-linux: dropped"
	if strings.Join(names, "|") != want {
		t.Errorf("ParseMissing = %q, want %q", names, want)
	}
	if sel := selectMissing(got, []string{"pi"}, nil); len(sel) != 1 || sel[0].Agent != "pi" {
		t.Errorf("selectMissing(pi) = %v, want pi only", sel)
	}
	if sel := selectMissing(got, nil, []System{X86_64Linux}); len(sel) != 1 || sel[0].System != X86_64Linux {
		t.Errorf("selectMissing(x86_64-linux) = %v, want forge on x86_64-linux only", sel)
	}
}

func TestLoadMissingWithoutOutput(t *testing.T) {
	fake := func(_ context.Context, args ...string) ([]byte, error) {
		return nil, &Error{Args: args, Stderr: "error: flake 'path:/x' does not provide attribute 'packages.x86_64-linux.missingAgents', 'legacyPackages.x86_64-linux.missingAgents' or 'missingAgents'"}
	}
	got, err := loadMissing(context.Background(), Flake{Ref: "/x"}, withNix(fake))
	if err != nil || got != nil {
		t.Errorf("loadMissing(flake without missingAgents) = %v, %v, want nothing missing", got, err)
	}
}

// dropForgeAndPiOnArm is llm-agents renaming forge's package once more and
// no longer building pi for aarch64-linux.
func dropForgeAndPiOnArm(t *testing.T) func(string) string {
	return func(agents string) string {
		agents = strings.Replace(agents, `attr = "forgecode";`, `attr = "forge-renamed";`, 1)
		both := `platforms = [ "x86_64-linux" "aarch64-linux" ];`
		i := strings.Index(agents, `attr = "pi";`)
		j := i + strings.Index(agents[i:], both)
		if i < 0 || j < i {
			t.Fatalf("the stand-in's agents.nix has no pi entry with both platforms")
		}
		return agents[:j] + `platforms = [ "x86_64-linux" ];` + agents[j+len(both):]
	}
}

// TestMissingAgentsFromFlake: when llm-agents stops providing agents the
// flake lists, the flake's check fails naming them, LoadMissing names them
// with the reason, and every other agent still has its targets.
func TestMissingAgentsFromFlake(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	if testenv.RealInputs() {
		t.Skip("needs the stand-in llm-agents to take agents away")
	}
	root := testenv.RepoRoot(t)
	flake := Flake{Ref: root, Overrides: testenv.StandinOverridesWithAgents(t, dropForgeAndPiOnArm(t))}
	ctx := context.Background()

	missing, err := loadMissing(ctx, flake)
	if err != nil {
		t.Fatalf("LoadMissing = %v", err)
	}
	var got []string
	for _, m := range missing {
		got = append(got, m.Agent+"/"+string(m.System)+"/"+m.Package)
	}
	if want := "forge/x86_64-linux/forgecode forge/aarch64-linux/forgecode pi/aarch64-linux/pi"; strings.Join(got, " ") != want {
		t.Errorf("LoadMissing = %v, want %s", got, want)
	}
	for _, m := range missing {
		if m.Agent == "pi" && !strings.Contains(m.Reason, "meta.platforms on x86_64-linux leaves aarch64-linux out") {
			t.Errorf("pi's reason = %q, want it to say llm-agents' meta.platforms dropped aarch64-linux", m.Reason)
		}
	}

	targets, err := Load(ctx, flake)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if len(targets) != 57 || len(Agents(targets)) != 29 {
		t.Errorf("Load = %d targets of %d agents, want 57 of 29: everything but forge, and pi on x86_64-linux", len(targets), len(Agents(targets)))
	}

	args := append([]string{"build", "--no-link", flake.Installable("checks.x86_64-linux.agents")}, flake.OverrideArgs()...)
	_, err = Run(ctx, args...)
	var nerr *Error
	if !errors.As(err, &nerr) {
		t.Fatalf("nix build checks.x86_64-linux.agents = %v, want it to fail", err)
	}
	for _, want := range []string{"forge on aarch64-linux (package forgecode)", "forge on x86_64-linux (package forgecode)", "pi on aarch64-linux (package pi)"} {
		if !strings.Contains(nerr.Stderr, want) {
			t.Errorf("the agents check's failure lacks %q:\n%s", want, nerr.Stderr)
		}
	}
}

// llmAgentsAfterTheLock is the stand-in llm-agents as the real one stands
// late in 2026 (testdata/standin/llm-agents/FACTS.md): iflow-cli removed;
// crush and cli-proxy-api on its own Go builder, whose meta.platforms is
// x86_64-linux only; droid and qoder-cli x86_64-linux only. And, as any
// nightly may find it, pi marked broken, which the locked revision's filter
// (blueprint's) keeps in its packages.
func llmAgentsAfterTheLock(t *testing.T) func(string) string {
	return func(agents string) string {
		i := strings.Index(agents, `    attr = "iflow-cli";`)
		start := strings.LastIndex(agents[:i], "  {\n")
		end := i + strings.Index(agents[i:], "  }\n") + len("  }\n")
		if i < 0 || start < 0 || end < i {
			t.Fatalf("the stand-in's agents.nix has no iflow-cli entry")
		}
		agents = agents[:start] + agents[end:]
		both := `platforms = [ "x86_64-linux" "aarch64-linux" ];`
		for _, a := range []string{"crush", "cli-proxy-api", "droid", "qoder-cli"} {
			i := strings.Index(agents, `attr = "`+a+`";`)
			j := i + strings.Index(agents[i:], both)
			if i < 0 || j < i {
				t.Fatalf("the stand-in's agents.nix has no %s entry with both platforms", a)
			}
			agents = agents[:j] + `platforms = [ "x86_64-linux" ];` + agents[j+len(both):]
		}
		return strings.Replace(agents, `attr = "pi";`, `attr = "pi"; broken = true;`, 1)
	}
}

// TestMissingAgentsAfterTheLock: the same flake on the llm-agents of late
// 2026 still evaluates, builds every other agent, and its agents check
// fails naming each change and what to do in lib/agents.nix: the bot's
// lock update tells what to change.
func TestMissingAgentsAfterTheLock(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	if testenv.RealInputs() {
		t.Skip("needs the stand-in llm-agents to move past the lock")
	}
	root := testenv.RepoRoot(t)
	flake := Flake{Ref: root, Overrides: testenv.StandinOverridesWithAgents(t, llmAgentsAfterTheLock(t))}
	ctx := context.Background()

	missing, err := loadMissing(ctx, flake)
	if err != nil {
		t.Fatalf("LoadMissing = %v", err)
	}
	got := map[string]string{}
	for _, m := range missing {
		got[m.Agent+"/"+string(m.System)] = m.Reason
	}
	want := map[string]string{
		"iflow-cli/x86_64-linux":      "it is on no system",
		"iflow-cli/aarch64-linux":     "it is on no system",
		"crush/aarch64-linux":         "meta.platforms on x86_64-linux leaves aarch64-linux out",
		"cli-proxy-api/aarch64-linux": "meta.platforms on x86_64-linux leaves aarch64-linux out",
		"droid/aarch64-linux":         "meta.platforms on x86_64-linux leaves aarch64-linux out",
		"qoder-cli/aarch64-linux":     "meta.platforms on x86_64-linux leaves aarch64-linux out",
		"pi/x86_64-linux":             "marks pi as broken",
		"pi/aarch64-linux":            "marks pi as broken",
	}
	for k, reason := range want {
		if !strings.Contains(got[k], reason) {
			t.Errorf("LoadMissing: %s = %q, want a reason saying %q", k, got[k], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("LoadMissing = %v, want exactly %d agent/system pairs", got, len(want))
	}

	targets, err := Load(ctx, flake)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	// 30 agents on 2 systems, less iflow-cli and pi on both and four on arm.
	if len(targets) != 60-4-4 {
		t.Errorf("Load = %d targets, want 52", len(targets))
	}

	args := append([]string{"build", "--no-link", flake.Installable("checks.x86_64-linux.agents")}, flake.OverrideArgs()...)
	_, err = Run(ctx, args...)
	var nerr *Error
	if !errors.As(err, &nerr) {
		t.Fatalf("nix build checks.x86_64-linux.agents = %v, want it to fail", err)
	}
	for _, want := range []string{"iflow-cli on x86_64-linux (package iflow-cli)", "crush on aarch64-linux (package crush)",
		"remove aarch64-linux from the agent's systems in lib/agents.nix", "pi on x86_64-linux (package pi): llm-agents marks pi as broken"} {
		if !strings.Contains(nerr.Stderr, want) {
			t.Errorf("the agents check's failure lacks %q:\n%s", want, nerr.Stderr)
		}
	}
}
