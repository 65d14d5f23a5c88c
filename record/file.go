package record

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// BuildSchema names the format of a Build record.
const BuildSchema = "agent-images/build/v1"

// Build is the record `release build` writes (to --output, and as the
// build-record step output): what one runner built, tested, pushed by digest
// and signed. `release merge --from` accepts a part only when the registry
// still holds the recorded digest under its staging tag and the part's
// signature verifies against the identity this release signs with.
type Build struct {
	Schema     string `json:"schema"`
	Commit     string `json:"commit"`
	StagingKey string `json:"stagingKey"`
	Registry   string `json:"registry"`
	DryRun     bool   `json:"dryRun,omitempty"`
	// Inputs is how the flake's inputs were locked for this build, by
	// their path from the flake ("nixpkgs", "llm-agents/nixpkgs"): merge
	// takes a part only from a build of the inputs it evaluates itself.
	Inputs map[string]Input `json:"inputs,omitempty"`
	Images []*Image         `json:"images"`
}

// Input is how the lock pinned one flake input: the NAR hash of its source,
// and its revision where it has one.
type Input struct {
	Rev     string `json:"rev,omitempty"`
	NarHash string `json:"narHash"`
}

func (i Input) String() string {
	if i.Rev != "" {
		return i.Rev + " (" + i.NarHash + ")"
	}
	return i.NarHash
}

// Failed lists the images that failed, as agent/system.
func (b *Build) Failed() []string {
	var out []string
	for _, i := range b.Images {
		if i.Failed() {
			out = append(out, i.String())
		}
	}
	return out
}

// WriteFile writes the report as indented JSON.
func (r *Report) WriteFile(path string) error { return writeJSON(path, r) }

// WriteFile writes the build record as indented JSON.
func (b *Build) WriteFile(path string) error { return writeJSON(path, b) }

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Files is path itself, or every *.json file in it when it is a directory
// (the artifacts of several jobs downloaded into one), sorted.
func Files(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	files, err := filepath.Glob(filepath.Join(path, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// ReadReport reads one release.json.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, a := range r.Agents {
		if a.Agent == "" {
			return nil, fmt.Errorf("%s: an agent without a name", path)
		}
	}
	return &r, nil
}

// ReadBuilds reads the build records at path: a file, or every *.json file
// in a directory. A file that is not a build record is an error naming it.
func ReadBuilds(path string) ([]*Build, error) {
	files, err := Files(path)
	if err != nil {
		return nil, fmt.Errorf("reading build records: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("reading build records: no *.json file in %s", path)
	}
	var out []*Build
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading build records: %w", err)
		}
		var b Build
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("build record %s: %w", f, err)
		}
		if b.Schema != BuildSchema {
			return nil, fmt.Errorf("%s is not a build record (schema %q, want %q): pass the --output files of `release build`", f, b.Schema, BuildSchema)
		}
		out = append(out, &b)
	}
	return out, nil
}
