package render

import (
	"fmt"
	"strings"

	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/record"
)

// What GitHub accepts at most: a release's notes, and an issue or a comment.
const (
	maxReleaseBody = 125000
	maxIssueBody   = 65536
)

// StepSummary is the Markdown a workflow run shows for a release: a row per
// agent (where its index is, or failed, and why; its version, platforms
// with their smoke tests, tags, and whether anything changed), the notes,
// and what changed since the last release.
func StepSummary(agents []*record.Agent) string {
	var b strings.Builder
	b.WriteString("### Agent images\n\n| Agent | Index | Version | Status | Platforms | Tags | Changed |\n|---|---|---|---|---|---|---|\n")
	for _, a := range agents {
		var plats []string
		for _, p := range a.Platforms {
			s := string(p.System)
			if p.Smoke != nil {
				s += fmt.Sprintf(" (smoke %s: %d passed, %d failed)", p.Smoke.Mode, p.Smoke.Passed, len(p.Smoke.Failed))
			}
			plats = append(plats, s)
		}
		status := string(a.Status)
		if complete, failed := destinations(a); a.Error != "" && len(complete)+len(failed) == 0 {
			status += ": " + cell(a.Error)
		}
		changed := "yes"
		switch {
		case a.Index.Hex == "":
			changed = ""
		case a.Unchanged || a.SameDerivation:
			changed = "no"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", a.Agent, whereCell(a), a.Version, status,
			strings.Join(plats, "<br>"), cell(strings.Join(a.Tags, ", ")), changed)
	}
	if len(agents) == 0 {
		b.WriteString("| (none) | | | | | | |\n")
	}
	b.WriteString(notesSection(agents))
	if section := ChangesSection(reports(agents)); section != "" {
		b.WriteString("\n" + section)
	}
	return b.String()
}

// ReleaseNotes is the body of a tag's GitHub Release: one row per agent
// released with its index, its tags and the command that verifies it.
func ReleaseNotes(tag string, agents []*record.Agent) string {
	agents = Released(agents)
	var b strings.Builder
	fmt.Fprintf(&b, "Agent images released from %s. Pull by digest to get exactly these bytes.\n\n", tag)
	b.WriteString("| Agent | Index digest | Tags | Verify |\n|---|---|---|---|\n")
	for _, a := range agents {
		tags := make([]string, len(a.Tags))
		for i, t := range a.Tags {
			tags[i] = "`" + t + "`"
		}
		verify := "release verify --agent " + a.Agent
		if complete, _ := destinations(a); complete[0].Signing != nil && complete[0].Signing.VerifyCommand != "" {
			verify = complete[0].Signing.VerifyCommand
		}
		fmt.Fprintf(&b, "| %s | %s | %s | `%s` |\n", a.Agent, whereCell(a), strings.Join(tags, " "), cell(verify))
	}
	b.WriteString(notesSection(agents))
	if section := ChangesSectionWithin(reports(agents), maxReleaseBody-b.Len()-2); section != "" {
		b.WriteString("\n" + section)
	}
	return b.String()
}

// Nightly is what the nightly tracking issue says of a run: which agents
// and jobs failed, which agents llm-agents no longer provides (missing:
// nothing was built for them, so no job failed, yet they were not
// released), and what changed in the agents that released.
func Nightly(run gh.Run, missing []string, agents []*record.Agent) gh.Nightly {
	failure := func(first bool) string {
		var b strings.Builder
		if first {
			b.WriteString("The nightly release failed. This issue stays open, with a comment per failing night, until a nightly succeeds.\n\n")
		} else {
			b.WriteString("The nightly release failed again.\n\n")
		}
		fmt.Fprintf(&b, "Run: %s\n\n", run.URL)
		list := func(title, format string, items []string) {
			if len(items) > 0 {
				b.WriteString(title)
				for _, it := range items {
					fmt.Fprintf(&b, format, it)
				}
			}
		}
		list("Failed agents:\n", "- `%s`\n", run.Failed)
		list("\nFailed jobs (every agent is affected):\n", "- %s\n", run.FailedJobs)
		list("\nAgents listed in lib/agents.nix that llm-agents no longer provides (not released; the others were):\n", "- %s\n", missing)
		return withChanges(b.String(), reports(agents))
	}
	return gh.Nightly{
		Failed:  len(run.Failed)+len(run.FailedJobs)+len(missing) > 0,
		Opening: failure(true),
		Again:   failure(false),
		Fixed:   withChanges(fmt.Sprintf("The nightly release succeeded again: %s\n\nClosing.", run.URL), reports(agents)),
	}
}

// withChanges appends what changed to an issue's or a comment's text,
// within what GitHub accepts.
func withChanges(text string, reports []*record.Changes) string {
	if section := ChangesSectionWithin(reports, maxIssueBody-len(text)-2); section != "" {
		return text + "\n\n" + section
	}
	return text
}

// whereCell is the table cell of where an agent's index is: its reference
// in each destination that holds it and, below, each one it failed in.
func whereCell(a *record.Agent) string {
	complete, failed := destinations(a)
	var lines []string
	for _, p := range complete {
		lines = append(lines, "`"+p.Repository+"@"+a.Index.String()+"`")
	}
	if len(complete) == 0 && a.Index.Hex != "" {
		lines = append(lines, "`"+a.Index.String()+"`")
	}
	for _, p := range failed {
		lines = append(lines, "`"+p.Repository+"`: **failed**: "+cell(p.Error))
	}
	return strings.Join(lines, "<br>")
}

// cell keeps a value inside one Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "`", "'").Replace(s)
}

// reports are the change reports of the agents that have one.
func reports(agents []*record.Agent) []*record.Changes {
	var out []*record.Changes
	for _, a := range agents {
		if a.Changes != nil {
			out = append(out, a.Changes)
		}
	}
	return out
}
