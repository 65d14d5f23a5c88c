package build

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/matrix"
)

// DrvPaths returns the derivation of each target's image, keyed by
// Target.String(), from one nix eval and without building anything. A merge
// job uses it to name in provenance the derivations other jobs built: the
// derivation is a function of the flake and its lock alone.
func DrvPaths(ctx context.Context, flake nix.Flake, targets []matrix.Target, opts ...Option) (map[string]string, error) {
	o := options{nix: nix.Run}
	for _, opt := range opts {
		opt(&o)
	}
	bySystem := map[matrix.System][]string{}
	for _, t := range targets {
		bySystem[t.System] = append(bySystem[t.System], t.Agent)
	}
	var expr strings.Builder
	expr.WriteString("ps: {")
	for sys, agents := range bySystem {
		fmt.Fprintf(&expr, " %q = {", sys)
		for _, a := range agents {
			fmt.Fprintf(&expr, " %q = ps.%q.%q.drvPath;", a, sys, a)
		}
		expr.WriteString(" };")
	}
	expr.WriteString(" }")
	args := append([]string{"eval", "--json", flake.Installable("packages"), "--apply", expr.String()}, flake.OverrideArgs()...)
	out, err := o.nix(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("evaluating the derivations of %d targets: %w", len(targets), err)
	}
	var got map[matrix.System]map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		return nil, fmt.Errorf("decoding derivation paths: %w", err)
	}
	paths := map[string]string{}
	for _, t := range targets {
		p := got[t.System][t.Agent]
		if !strings.HasSuffix(p, ".drv") {
			return nil, fmt.Errorf("nix eval gave %q as the derivation of %s, want a .drv path", p, t)
		}
		paths[t.String()] = p
	}
	return paths, nil
}
