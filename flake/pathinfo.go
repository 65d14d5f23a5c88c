package flake

import (
	"context"
	"encoding/json"
	"fmt"
)

// NarHashes asks Nix for the narHash it registered for each of paths, as it
// prints them ("sha256-<base64>"), by path. A path the local store does not
// hold is left out. `nix path-info --json` prints a list of objects naming
// their path before Nix 2.19 (an invalid one marked "valid": false) and an
// object keyed by path since (an invalid one null); both are read.
func NarHashes(ctx context.Context, run Runner, paths []string) (map[string]string, error) {
	hashes := map[string]string{}
	if len(paths) == 0 {
		return hashes, nil
	}
	out, err := run(ctx, append([]string{"path-info", "--json"}, paths...)...)
	if err != nil {
		return nil, fmt.Errorf("asking nix for the NAR hashes of %d store paths: %w", len(paths), err)
	}
	type info struct {
		Path    string `json:"path"`
		NarHash string `json:"narHash"`
	}
	var list []*info
	if json.Unmarshal(out, &list) != nil {
		var byPath map[string]*info
		if err := json.Unmarshal(out, &byPath); err != nil {
			return nil, fmt.Errorf("nix path-info --json printed %q, want store paths and their narHash: %w", firstLine(string(out)), err)
		}
		for p, i := range byPath {
			if i != nil {
				i.Path = p
				list = append(list, i)
			}
		}
	}
	for _, i := range list {
		if i != nil && i.NarHash != "" {
			hashes[i.Path] = i.NarHash
		}
	}
	return hashes, nil
}
