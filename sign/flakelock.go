package sign

import (
	"encoding/json"
	"fmt"

	"github.com/nothingnesses/agent-images/internal/redact"
)

// FlakeInput is one direct input of the flake, as the provenance records
// it: by what Nix fetched, never by the reference it was fetched from.
type FlakeInput struct {
	// Rev is the git revision Nix locked (git and GitHub inputs).
	Rev string
	// NarHash is Nix's hash of the input's tree (sha256-<base64>).
	NarHash string
	// Override is the public form (redact.FlakeRef) of the
	// --override-input that replaced the input: scheme, host and path of a
	// URL, only the type of a local path; empty when not overridden.
	Override string
}

// FlakeInputs pins each direct input of a flake from lock, flake.lock's
// JSON as Nix resolved it with the overrides applied (nix.Flake.Lock), so
// that an overridden input is pinned by the hash or revision Nix fetched.
// The rule for overrides, whose references can hold a token, a query or a
// local path: they are recorded as name, rev and narHash, plus the public
// form of the reference. An override the lock does not pin (a nil lock, or
// a node with neither rev nor narHash) is recorded by that public form only.
func FlakeInputs(lock []byte, overrides map[string]string) (map[string]FlakeInput, error) {
	out := map[string]FlakeInput{}
	if len(lock) > 0 {
		var l struct {
			Root  string `json:"root"`
			Nodes map[string]struct {
				Inputs map[string]json.RawMessage `json:"inputs"`
				Locked struct {
					Rev     string `json:"rev"`
					NarHash string `json:"narHash"`
				} `json:"locked"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(lock, &l); err != nil {
			return nil, fmt.Errorf("parsing the flake's lock: %w", err)
		}
		for input, target := range l.Nodes[l.Root].Inputs {
			var node string
			if json.Unmarshal(target, &node) != nil {
				continue // a "follows" path: the followed input is listed itself
			}
			locked := l.Nodes[node].Locked
			if locked.Rev != "" || locked.NarHash != "" {
				out[input] = FlakeInput{Rev: locked.Rev, NarHash: locked.NarHash}
			}
		}
	}
	for input, ref := range overrides {
		in := out[input]
		in.Override = redact.FlakeRef(ref)
		out[input] = in
	}
	return out, nil
}
