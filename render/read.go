// Package render writes what a release did for people and workflows, each
// output in one place: the terminal (progress, the summary table, the prune
// plan), the Markdown step summary, the GitHub Release notes, the nightly
// issue's text, and the Actions step outputs. Everything it shows of a
// release it derives from release.json's types (record).
package render

import (
	"fmt"
	"sort"

	"github.com/nothingnesses/agent-images/record"
)

// Read reads release.json files: a file, or every *.json in a directory (one
// per merge job in the split workflow), and returns their agents sorted by
// name. An agent with an index in two files is an error, since the run would
// otherwise report one of two different digests.
func Read(path string) ([]*record.Agent, error) {
	files, err := record.Files(path)
	if err != nil {
		return nil, fmt.Errorf("reading release results: %w", err)
	}
	seen := map[string]string{}
	var all []*record.Agent
	for _, f := range files {
		rep, err := record.ReadReport(f)
		if err != nil {
			return nil, fmt.Errorf("reading release results: %w", err)
		}
		for _, a := range rep.Agents {
			if prev, ok := seen[a.Agent]; ok && a.Index.Hex != "" {
				return nil, fmt.Errorf("agent %s is in both %s and %s", a.Agent, prev, f)
			} else if a.Index.Hex != "" {
				seen[a.Agent] = f
			}
			all = append(all, a)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Agent < all[j].Agent })
	return all, nil
}

// destinations splits where an agent was published into the destinations
// that hold its release, in --registry order, and those that failed.
func destinations(a *record.Agent) (complete, failed []*record.Publication) {
	pubs := a.Published
	if len(pubs) == 0 && a.Repository != "" && a.Index.Hex != "" {
		// Written before each registry had its own entry.
		pubs = []*record.Publication{{Repository: a.Repository, Status: a.Status, Error: a.Error, Signing: a.Signing}}
	}
	for _, p := range pubs {
		if p.Failed() || p.Error != "" {
			failed = append(failed, p)
		} else {
			complete = append(complete, p)
		}
	}
	return complete, failed
}

// Released are the agents a release put somewhere: an agent that failed
// everywhere (an error, no index, or no destination completed) is part of
// no release; one that completed in some destinations is.
func Released(agents []*record.Agent) []*record.Agent {
	var out []*record.Agent
	for _, a := range agents {
		if complete, _ := destinations(a); a.Index.Hex != "" && len(complete) > 0 {
			out = append(out, a)
		}
	}
	return out
}
