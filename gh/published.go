package gh

import (
	"fmt"
	"sort"

	"github.com/nothingnesses/agent-images/changes"
	"github.com/nothingnesses/agent-images/record"
)

// Published is what a release put in the registry for one agent, as
// release.json records it: the part of it the GitHub side shows.
type Published struct {
	Agent      string `json:"agent"`
	Repository string `json:"repository"`
	// Digest is the agent's multi-arch index.
	Digest    string   `json:"digest"`
	Tags      []string `json:"tags"`
	Unchanged bool     `json:"unchanged"`
	// Verify is the command that checks the signatures, when signed.
	Verify string `json:"verify,omitempty"`
	// Changes is what changed since the release latest named before; nil
	// when there was nothing to compare.
	Changes *changes.Report `json:"changes,omitempty"`
	// Notes say what the release could not do without failing for it.
	Notes []string `json:"notes,omitempty"`
}

// Reference is repository@digest.
func (p Published) Reference() string { return p.Repository + "@" + p.Digest }

// ReadPublished reads release.json files: a file, or every *.json in a
// directory (one per merge job in the split workflow). Agents are returned
// sorted by name; an agent present in two files is an error, since the
// nightly would otherwise report one of two different digests.
func ReadPublished(path string) ([]Published, error) {
	files, err := record.Files(path)
	if err != nil {
		return nil, fmt.Errorf("reading release results: %w", err)
	}
	seen := map[string]string{}
	var all []Published
	for _, f := range files {
		rep, err := record.ReadReport(f)
		if err != nil {
			return nil, fmt.Errorf("reading release results: %w", err)
		}
		for _, p := range publishedAgents(rep) {
			if prev, ok := seen[p.Agent]; ok {
				return nil, fmt.Errorf("agent %s is in both %s and %s", p.Agent, prev, f)
			}
			seen[p.Agent] = f
			all = append(all, p)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Agent < all[j].Agent })
	return all, nil
}

// publishedAgents returns the agents a release.json says were published;
// agents that failed (an error, no index) are not part of any release.
func publishedAgents(rep *record.Report) []Published {
	var out []Published
	for _, a := range rep.Agents {
		if a.Error != "" || a.Index.Hex == "" {
			continue
		}
		p := Published{Agent: a.Agent, Repository: a.Repository, Digest: a.Index.String(), Tags: a.Tags, Unchanged: a.Unchanged,
			Changes: a.Changes, Notes: a.Notes}
		if a.Signing != nil {
			p.Verify = a.Signing.VerifyCommand
		}
		out = append(out, p)
	}
	return out
}
