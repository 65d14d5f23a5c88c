package gh

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/nothingnesses/agent-images/flake"
)

// Digests maps each agent to its index digest: the Action's `digests`
// output, for later steps that pin images by digest.
func Digests(agents []Published) map[string]string {
	out := make(map[string]string, len(agents))
	for _, p := range agents {
		out[p.Agent] = p.Digest
	}
	return out
}

// MatrixAgents returns the distinct agents of a GitHub matrix, sorted: the
// merge jobs run once per agent, not once per (agent, system).
func MatrixAgents(matrixJSON string) ([]string, error) {
	var m flake.GitHubMatrix
	if err := json.Unmarshal([]byte(matrixJSON), &m); err != nil {
		return nil, fmt.Errorf("reading the matrix: %w", err)
	}
	seen := map[string]bool{}
	agents := []string{}
	for _, e := range m.Include {
		if e.Agent != "" && !seen[e.Agent] {
			seen[e.Agent] = true
			agents = append(agents, e.Agent)
		}
	}
	sort.Strings(agents)
	return agents, nil
}

// Summary is the Markdown table a workflow run shows for its release.
func Summary(agents []Published) string {
	var b strings.Builder
	b.WriteString("### Released agent images\n\n| Agent | Index | Tags | Changed |\n|---|---|---|---|\n")
	for _, p := range agents {
		changed := "yes"
		if p.Unchanged {
			changed = "no"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", p.Agent, whereCell(p), cell(strings.Join(p.Tags, ", ")), changed)
	}
	if len(agents) == 0 {
		b.WriteString("| (none) | | | |\n")
	}
	b.WriteString(NotesSection(notesOf(agents)))
	if section := ChangesSection(changesOf(agents)); section != "" {
		b.WriteString("\n" + section)
	}
	return b.String()
}

// whereCell is the table cell of where an agent's index is: its reference
// in each registry that holds it and, below, each registry it failed in.
func whereCell(p Published) string {
	var lines []string
	for _, r := range p.References() {
		lines = append(lines, "`"+r+"`")
	}
	for _, f := range p.Failed {
		lines = append(lines, "`"+f.Repository+"`: **failed**: "+cell(f.Error))
	}
	return strings.Join(lines, "<br>")
}

// SetOutput appends name=value to the step's $GITHUB_OUTPUT, in the
// delimited form so a value may hold newlines.
func SetOutput(name, value string) error {
	return appendEnvFile("GITHUB_OUTPUT", name, value)
}

// AppendSummary adds Markdown to the step's $GITHUB_STEP_SUMMARY.
func AppendSummary(markdown string) error {
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	return appendFile(path, markdown)
}

func appendEnvFile(env, name, value string) error {
	path := os.Getenv(env)
	if path == "" {
		return fmt.Errorf("$%s is not set: not running under GitHub Actions?", env)
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return err
	}
	delim := "ghadelim_" + hex.EncodeToString(r[:])
	return appendFile(path, fmt.Sprintf("%s<<%s\n%s\n%s\n", name, delim, value, delim))
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
