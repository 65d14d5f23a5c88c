// Tests of flake.nix itself that `nix flake check` cannot express, because
// they are about how the flake's inputs are locked rather than its outputs.
package agentimages_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestLlmAgentsKeepsItsOwnNixpkgs fails when flake.nix makes llm-agents
// follow our nixpkgs: its packages would then not be the store paths its
// binary cache holds, and every source-built agent would compile in CI.
func TestLlmAgentsKeepsItsOwnNixpkgs(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	args := append([]string{"flake", "metadata", "--json", testenv.RepoRoot(t)}, testenv.OverrideArgs(t)...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), "nix", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix flake metadata: %v\n%s", err, stderr.String())
	}
	var meta struct {
		Locks struct {
			Nodes map[string]struct {
				Inputs map[string]json.RawMessage `json:"inputs"`
			} `json:"nodes"`
		} `json:"locks"`
	}
	if err := json.Unmarshal(out, &meta); err != nil {
		t.Fatalf("nix flake metadata output: %v", err)
	}
	nodes := meta.Locks.Nodes
	var node string
	if err := json.Unmarshal(nodes["root"].Inputs["llm-agents"], &node); err != nil {
		t.Fatalf("the lock has no llm-agents input of the root: %s", nodes["root"].Inputs["llm-agents"])
	}
	// A follows is a list (the input path it follows); an input of its own
	// is the name of a lock node.
	input := nodes[node].Inputs["nixpkgs"]
	var own string
	if err := json.Unmarshal(input, &own); err != nil || own == "" {
		t.Errorf("llm-agents' nixpkgs is locked as %s, want a nixpkgs of its own (no inputs.nixpkgs.follows in flake.nix)", input)
	}
}

// imageRow is a row of docs/images.md's image tables.
var imageRow = regexp.MustCompile("^\\| `([^`]+)` \\| ([^|]+?) \\| `([^`]+)` \\| (yes|no) \\| ([^|]+?) \\| `nix build \\.#([^`]+)` \\|$")

// TestImageTable holds docs/images.md's image tables to the flake's release
// set: the same agents, each with its display name, program, whether it is
// unfree and the systems it has an image on. Offline that is the stand-in
// llm-agents, which mirrors the locked revision; with the real inputs, the
// lock itself. When the lock moves and llm-agents changes an agent, this
// says which row to change.
func TestImageTable(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	root := testenv.RepoRoot(t)
	page, err := os.ReadFile(filepath.Join(root, "docs", "images.md"))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name, program string
		unfree        bool
		systems       []string
	}
	inDocs := map[string]row{}
	for _, l := range strings.Split(string(page), "\n") {
		m := imageRow.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if m[1] != m[6] {
			t.Errorf("docs/images.md row %q builds .#%s, want .#%s", l, m[6], m[1])
		}
		var systems []string
		for _, arch := range strings.Split(m[5], ", ") {
			systems = append(systems, arch+"-linux")
		}
		slices.Sort(systems)
		inDocs[m[1]] = row{name: m[2], program: m[3], unfree: m[4] == "yes", systems: systems}
	}

	targets, err := flake.Load(t.Context(), flake.Flake{Ref: root, Overrides: testenv.StandinOverrides(t)})
	if err != nil {
		t.Fatalf("flake.Load = %v", err)
	}
	inFlake := map[string]row{}
	for _, tg := range targets {
		r := inFlake[tg.Agent]
		r.name, r.program, r.unfree = tg.Image.Name, tg.Image.MainProgram, tg.Image.Unfree
		r.systems = append(r.systems, string(tg.System))
		slices.Sort(r.systems)
		inFlake[tg.Agent] = r
	}
	if len(inFlake) == 0 {
		t.Fatal("the flake's release set is empty")
	}
	for agent, want := range inFlake {
		got, ok := inDocs[agent]
		switch {
		case !ok:
			t.Errorf("docs/images.md has no row for %s (%+v)", agent, want)
		case got.name != want.name || got.program != want.program || got.unfree != want.unfree || !slices.Equal(got.systems, want.systems):
			t.Errorf("docs/images.md's row for %s = %+v, want %+v", agent, got, want)
		}
	}
	for agent := range inDocs {
		if _, ok := inFlake[agent]; !ok {
			t.Errorf("docs/images.md has a row for %s, which the flake's release set lacks", agent)
		}
	}
}

// TestStandinMirrorsTheLock fails when the committed flake.lock pins another
// llm-agents than the one the stand-in describes (testdata/standin/llm-agents:
// its revision file, and FACTS.md for what was read where): the offline
// checks would then hold the flake to facts the real inputs no longer have.
// When the update bot moves the lock, this is the test that says so.
func TestStandinMirrorsTheLock(t *testing.T) {
	root := testenv.RepoRoot(t)
	lock, err := os.ReadFile(filepath.Join(root, "flake.lock"))
	if err != nil {
		t.Fatalf("flake.lock: %v: commit the lock every job of a release builds from", err)
	}
	locked, err := flake.LockedInputs(lock)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := os.ReadFile(filepath.Join(root, "testdata", "standin", "llm-agents", "revision"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(rev)), locked["llm-agents"].Rev; got != want {
		t.Errorf("the stand-in llm-agents mirrors %s, flake.lock pins %s: bring testdata/standin/llm-agents (agents.nix, flake.nix, FACTS.md, revision) and lib/agents.nix to the locked revision", got, want)
	}
	for _, input := range []string{"nixpkgs", "llm-agents", "llm-agents/nixpkgs"} {
		if in := locked[input]; len(in.Rev) != 40 || !strings.HasPrefix(in.NarHash, "sha256-") {
			t.Errorf("flake.lock pins %s as %+v, want a revision and a NAR hash", input, in)
		}
	}
}
