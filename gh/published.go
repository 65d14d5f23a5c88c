package gh

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

// releaseFile is the subset of release.json read here. The release tool
// writes either {"agents":[...]} or {"agents":{"pi":{...}}}; both are read.
type releaseFile struct {
	Agents json.RawMessage `json:"agents"`
}

type releaseAgent struct {
	Agent      string `json:"agent"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Index      *struct {
		Digest string `json:"digest"`
	} `json:"index"`
	IndexDigest string   `json:"indexDigest"`
	Tags        []string `json:"tags"`
	Unchanged   bool     `json:"unchanged"`
	Verify      string   `json:"verify"`
	Signature   *struct {
		Verify string `json:"verify"`
	} `json:"signature"`
}

func (a releaseAgent) published(name string) Published {
	p := Published{Agent: a.Agent, Repository: a.Repository, Digest: a.Digest,
		Tags: a.Tags, Unchanged: a.Unchanged, Verify: a.Verify}
	if p.Agent == "" {
		p.Agent = name
	}
	if p.Digest == "" && a.Index != nil {
		p.Digest = a.Index.Digest
	}
	if p.Digest == "" {
		p.Digest = a.IndexDigest
	}
	if p.Verify == "" && a.Signature != nil {
		p.Verify = a.Signature.Verify
	}
	return p
}

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
	trimmed := strings.TrimSpace(string(f.Agents))
	switch {
	case strings.HasPrefix(trimmed, "["):
		var list []releaseAgent
		if err := json.Unmarshal(f.Agents, &list); err != nil {
			return nil, fmt.Errorf("%s: agents: %w", path, err)
		}
		for _, a := range list {
			out = append(out, a.published(""))
		}
	case strings.HasPrefix(trimmed, "{"):
		var byName map[string]releaseAgent
		if err := json.Unmarshal(f.Agents, &byName); err != nil {
			return nil, fmt.Errorf("%s: agents: %w", path, err)
		}
		for name, a := range byName {
			out = append(out, a.published(name))
		}
	default:
		return nil, fmt.Errorf("%s: no agents in release results", path)
	}
	for _, p := range out {
		if p.Agent == "" || p.Digest == "" {
			return nil, fmt.Errorf("%s: an agent without name or index digest", path)
		}
	}
	return out, nil
}
