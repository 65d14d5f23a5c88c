package flake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// DefaultRunners are the GitHub-hosted runners that build each system natively.
var DefaultRunners = map[System]string{
	X86_64Linux:  "ubuntu-24.04",
	Aarch64Linux: "ubuntu-24.04-arm",
}

// GitHubEntry is one job of a GitHub strategy.matrix.
type GitHubEntry struct {
	Agent   string `json:"agent"`
	System  System `json:"system"`
	Runner  string `json:"runner"`
	Version string `json:"version"`
}

// GitHubMatrix is a GitHub strategy.matrix object: {"include":[...]}.
type GitHubMatrix struct {
	Include []GitHubEntry `json:"include"`
}

// ForGitHub builds the strategy.matrix for targets, one job per target, with
// the runner for its system taken from runners (DefaultRunners where unset).
func ForGitHub(targets []Target, runners map[System]string) GitHubMatrix {
	m := GitHubMatrix{Include: make([]GitHubEntry, 0, len(targets))}
	for _, t := range targets {
		runner := cmp.Or(runners[t.System], DefaultRunners[t.System])
		m.Include = append(m.Include, GitHubEntry{Agent: t.Agent, System: t.System, Runner: runner, Version: t.Image.Version})
	}
	return m
}

// WriteJSON writes the matrix as compact JSON, the form $GITHUB_OUTPUT takes.
func (m GitHubMatrix) WriteJSON(w io.Writer) error { return json.NewEncoder(w).Encode(m) }

// WriteTable writes targets as an aligned table for people.
func WriteTable(w io.Writer, targets []Target) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tSYSTEM\tVERSION\tPROGRAM\tNAME")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Agent, t.System, t.Image.Version, t.Image.MainProgram, t.Image.Name)
	}
	return tw.Flush()
}
