// Tests of flake.nix itself that `nix flake check` cannot express, because
// they are about how the flake's inputs are locked rather than its outputs.
package agentimages_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/nothingnesses/agent-images/internal/testenv"
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
