package pipeline

import (
	"encoding/json"
	"os"

	"github.com/nothingnesses/agent-images/smoke"
)

// Report is the outcome of a release, as written to --output release.json.
type Report struct {
	Registry string        `json:"registry,omitempty"`
	Layout   string        `json:"layout,omitempty"`
	Commit   string        `json:"commit,omitempty"`
	DryRun   bool          `json:"dryRun,omitempty"`
	Agents   []AgentReport `json:"agents"`
}

// AgentReport is one agent's part of a release.
type AgentReport struct {
	Agent      string `json:"agent"`
	Version    string `json:"version"`
	Repository string `json:"repository,omitempty"`
	// Index is the digest of the multi-arch index.
	Index     string           `json:"index,omitempty"`
	Platforms []PlatformReport `json:"platforms"`
	Tags      []string         `json:"tags,omitempty"`
	// Moved are the tags this run changed.
	Moved     []string `json:"moved,omitempty"`
	Unchanged bool     `json:"unchanged"`
	Status    Stage    `json:"status"`
	Error     string   `json:"error,omitempty"`
	// Signing is what the signer reported (signature and attestation references, verify command).
	Signing any `json:"signing,omitempty"`
}

// PlatformReport is one per-arch image.
type PlatformReport struct {
	System   string      `json:"system"`
	Platform string      `json:"platform"`
	Digest   string      `json:"digest,omitempty"`
	Size     int64       `json:"size,omitempty"`
	DrvPath  string      `json:"drvPath,omitempty"`
	Smoke    *SmokeBrief `json:"smoke,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// SmokeBrief is the smoke test of one image in a report.
type SmokeBrief struct {
	Mode    smoke.Mode     `json:"mode"`
	Runner  string         `json:"runner,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Passed  int            `json:"passed"`
	Failed  []smoke.Result `json:"failed,omitempty"`
	Skipped []smoke.Result `json:"skipped,omitempty"`
}

func brief(r *smoke.Report) *SmokeBrief {
	if r == nil {
		return nil
	}
	return &SmokeBrief{
		Mode:    r.Mode,
		Runner:  r.Runner,
		Reason:  r.Reason,
		Passed:  len(r.Results) - len(r.Failed()) - len(r.Skipped()),
		Failed:  r.Failed(),
		Skipped: r.Skipped(),
	}
}

// Failed lists the agents whose release failed.
func (r *Report) Failed() []string {
	var out []string
	for _, a := range r.Agents {
		if a.Status == StageFailed {
			out = append(out, a.Agent)
		}
	}
	return out
}

// WriteFile writes the report as indented JSON.
func (r *Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
