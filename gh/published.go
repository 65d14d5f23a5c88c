package gh

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
}

// Reference is repository@digest.
func (p Published) Reference() string { return p.Repository + "@" + p.Digest }

// ReadPublished reads release.json files: a file, or every *.json in a
// directory (one per merge job in the split workflow). Agents are returned
// sorted by name; an agent present in two files is an error, since the
// nightly would otherwise report one of two different digests.
func ReadPublished(path string) ([]Published, error) {
	files := []string{path}
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("reading release results: %w", err)
	} else if st.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.json"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
	}
	seen := map[string]string{}
	var all []Published
	for _, f := range files {
		ps, err := readPublishedFile(f)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
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

// releaseFile is the subset of release.json (pipeline.Report) read here.
type releaseFile struct {
	Agents []releaseAgent `json:"agents"`
}

type releaseAgent struct {
	Agent      string   `json:"agent"`
	Repository string   `json:"repository"`
	Index      string   `json:"index"`
	Tags       []string `json:"tags"`
	Unchanged  bool     `json:"unchanged"`
	Error      string   `json:"error"`
	Signing    *struct {
		VerifyCommand string `json:"verifyCommand"`
	} `json:"signing"`
}

// readPublishedFile returns the agents a release.json says were published;
// agents that failed (an error, no index) are not part of any release.
func readPublishedFile(path string) ([]Published, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading release results: %w", err)
	}
	var f releaseFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Published
	for _, a := range f.Agents {
		if a.Agent == "" {
			return nil, fmt.Errorf("%s: an agent without a name", path)
		}
		if a.Error != "" || a.Index == "" {
			continue
		}
		p := Published{Agent: a.Agent, Repository: a.Repository, Digest: a.Index, Tags: a.Tags, Unchanged: a.Unchanged}
		if a.Signing != nil {
			p.Verify = a.Signing.VerifyCommand
		}
		out = append(out, p)
	}
	return out, nil
}
