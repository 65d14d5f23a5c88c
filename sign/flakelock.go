package sign

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FlakeInputs returns the revision of each direct input of the flake in dir
// as its flake.lock pins it (the git rev, else the NAR hash), with inputs
// replaced by --override-input recorded as "override:<ref>". A flake without
// a lock file has only its overrides.
func FlakeInputs(dir string, overrides map[string]string) (map[string]string, error) {
	out := map[string]string{}
	raw, err := os.ReadFile(filepath.Join(dir, "flake.lock"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading the flake lock: %w", err)
	default:
		var lock struct {
			Root  string `json:"root"`
			Nodes map[string]struct {
				Inputs map[string]json.RawMessage `json:"inputs"`
				Locked struct {
					Rev     string `json:"rev"`
					NarHash string `json:"narHash"`
				} `json:"locked"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(raw, &lock); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "flake.lock"), err)
		}
		for input, target := range lock.Nodes[lock.Root].Inputs {
			var node string
			if json.Unmarshal(target, &node) != nil {
				continue // a "follows" path: the followed input is listed itself
			}
			l := lock.Nodes[node].Locked
			switch {
			case l.Rev != "":
				out[input] = l.Rev
			case l.NarHash != "":
				out[input] = l.NarHash
			}
		}
	}
	for input, ref := range overrides {
		out[input] = "override:" + ref
	}
	return out, nil
}
