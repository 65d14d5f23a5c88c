package sign

import (
	"strings"

	"github.com/nothingnesses/agent-images/flake"
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

// FlakeInputs pins each direct input of a flake from locked, how Nix
// locked its inputs with the overrides applied (flake.Metadata.Inputs), so
// that an overridden input, whose reference can hold a token, a query or a
// local path, is pinned by what Nix fetched plus the reference's public
// form; one the lock does not pin, by that public form only.
func FlakeInputs(locked map[string]flake.LockedInput, overrides map[string]string) map[string]FlakeInput {
	out := map[string]FlakeInput{}
	for path, in := range locked {
		if !strings.Contains(path, "/") {
			out[path] = FlakeInput{Rev: in.Rev, NarHash: in.NarHash}
		}
	}
	for input, ref := range overrides {
		in := out[input]
		in.Override = redact.FlakeRef(ref)
		out[input] = in
	}
	return out
}
