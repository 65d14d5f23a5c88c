package gh

import (
	"fmt"
	"sort"

	"github.com/nothingnesses/agent-images/record"
)

// Published is what a release put in the registry for one agent, as
// release.json records it: the part of it the GitHub side shows.
type Published struct {
	Agent string `json:"agent"`
	// Repository is the first registry's repository where the release is
	// complete; Mirrors are the others, in --registry order.
	Repository string   `json:"repository"`
	Mirrors    []string `json:"mirrors,omitempty"`
	// Failed are the registries this release did not complete in.
	Failed []FailedIn `json:"failed,omitempty"`
	// Digest is the agent's multi-arch index, the same in every registry.
	Digest    string   `json:"digest"`
	Tags      []string `json:"tags"`
	Unchanged bool     `json:"unchanged"`
	// Verify is the command that checks the signatures, when signed.
	Verify string `json:"verify,omitempty"`
	// Changes is what changed since the release latest named before; nil
	// when there was nothing to compare.
	Changes *record.Changes `json:"changes,omitempty"`
	// Notes say what the release could not do without failing for it.
	Notes []string `json:"notes,omitempty"`
}

// FailedIn is a registry an agent's release failed in, and why.
type FailedIn struct {
	Repository string `json:"repository"`
	Error      string `json:"error"`
}

// Reference is repository@digest.
func (p Published) Reference() string { return p.Repository + "@" + p.Digest }

// References are repository@digest in every registry that holds it.
func (p Published) References() []string {
	out := []string{p.Reference()}
	for _, m := range p.Mirrors {
		out = append(out, m+"@"+p.Digest)
	}
	return out
}

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

// publishedAgents returns the agents a release.json says were published
// somewhere: an agent that failed everywhere (an error, no index, or no
// registry completed) is not part of any release; one that completed in
// some registries is, and says which failed.
func publishedAgents(rep *record.Report) []Published {
	var out []Published
	for _, a := range rep.Agents {
		if a.Index.Hex == "" {
			continue
		}
		pubs := a.Published
		if len(pubs) == 0 {
			// Written before each registry had its own entry.
			pubs = []*record.Publication{{Repository: a.Repository, Status: a.Status, Error: a.Error, Signing: a.Signing}}
		}
		p := Published{Agent: a.Agent, Digest: a.Index.String(), Tags: a.Tags, Unchanged: a.Unchanged,
			Changes: a.Changes, Notes: a.Notes}
		complete := false
		for _, pub := range pubs {
			switch {
			case pub.Failed() || pub.Error != "":
				p.Failed = append(p.Failed, FailedIn{Repository: pub.Repository, Error: pub.Error})
			case !complete:
				complete = true
				p.Repository = pub.Repository
				if pub.Signing != nil {
					p.Verify = pub.Signing.VerifyCommand
				}
			default:
				p.Mirrors = append(p.Mirrors, pub.Repository)
			}
		}
		if complete {
			out = append(out, p)
		}
	}
	return out
}
