package record

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	Run        *Run   `json:"run,omitempty"`
	// Inputs is how the flake's inputs were locked for this build, by
	// their path from the flake ("nixpkgs", "llm-agents/nixpkgs"): merge
	// takes a part only from a build of the inputs it evaluates itself.
	Inputs map[string]Input `json:"inputs,omitempty"`
	Images []*Image         `json:"images"`

	// File is where ReadBuilds read the record, for messages.
	File string `json:"-"`
}

// Run is the GitHub Actions workflow run and attempt that wrote a build
// record. "Re-run failed jobs" runs a build job again in the same run with
// the next attempt number, and the records of the earlier attempts stay
// beside the new one: merge takes the newest (Newest).
type Run struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
}

// Newest is the build record a merge takes of several naming one part: the
// only one, else the highest attempt of one workflow run. Records of
// different runs, two of one attempt, or records without a run cannot be
// ordered, and the error names their files.
func Newest(builds []*Build) (*Build, error) {
	if len(builds) == 0 {
		return nil, errors.New("no build record")
	}
	newest := builds[0]
	for _, b := range builds[1:] {
		if b.Run == nil || newest.Run == nil || b.Run.ID != newest.Run.ID || b.Run.Attempt == newest.Run.Attempt {
			var names []string
			for _, b := range builds {
				names = append(names, b.describe())
			}
			return nil, fmt.Errorf("%d build records name it (%s) and none is the newest attempt of one run: pass the records of one run", len(builds), strings.Join(names, ", "))
		}
		if b.Run.Attempt > newest.Run.Attempt {
			newest = b
		}
	}
	return newest, nil
}

// describe is the record's file and, when known, its run and attempt.
func (b *Build) describe() string {
	s := cmp.Or(b.File, "a record")
	if b.Run == nil {
		return s + " of no run"
	}
	return fmt.Sprintf("%s of run %s attempt %d", s, b.Run.ID, b.Run.Attempt)
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
	// A link planted at path would have another file overwritten.
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link: the record is not written through one; remove it or give another path", path)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Files is path itself, or every *.json file in it, sorted, when it is a
// directory (the artifacts of several jobs downloaded into one).
func Files(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	return filepath.Glob(filepath.Join(path, "*.json"))
}

// ReadReport reads one release.json.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := ParseReport(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseReport decodes a release.json. What a reader would trip over, a null
// where an agent, platform or publication stands or an agent without a
// name, is an error: a report comes from another job, maybe another tool.
func ParseReport(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	for i, a := range r.Agents {
		switch {
		case a == nil:
			return nil, fmt.Errorf("agents[%d] is null", i)
		case a.Agent == "":
			return nil, errors.New("an agent without a name")
		case slices.Contains(a.Platforms, nil):
			return nil, fmt.Errorf("agent %s: a platform is null", a.Agent)
		case slices.Contains(a.Published, nil):
			return nil, fmt.Errorf("agent %s: a publication is null", a.Agent)
		}
	}
	return &r, nil
}

// ReadBuilds reads the build records at path: a file, or every *.json file
// in a directory. A file that is not a build record is an error naming it.
func ReadBuilds(path string) ([]*Build, error) {
	files, err := Files(path)
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no *.json file in %s", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading build records: %w", err)
	}
	var out []*Build
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading build records: %w", err)
		}
		b, err := ParseBuild(data)
		switch {
		case errors.Is(err, errNotABuild):
			return nil, fmt.Errorf("%s is %w", f, err)
		case err != nil:
			return nil, fmt.Errorf("build record %s: %w", f, err)
		}
		b.File = f
		out = append(out, b)
	}
	return out, nil
}

var errNotABuild = errors.New("not a build record")

// ParseBuild decodes a build record, refusing another schema and a null
// where an image stands.
func ParseBuild(data []byte) (*Build, error) {
	var b Build
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	if b.Schema != BuildSchema {
		return nil, fmt.Errorf("%w (schema %q, want %q): pass the records `release build` writes", errNotABuild, b.Schema, BuildSchema)
	}
	if i := slices.Index(b.Images, nil); i >= 0 {
		return nil, fmt.Errorf("images[%d] is null", i)
	}
	return &b, nil
}
