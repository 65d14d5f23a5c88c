package flake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Missing is an agent the flake lists (lib/agents.nix) that llm-agents no
// longer provides on a system it is expected on: renamed, dropped or
// broken upstream. It has no target there; the other agents still release.
type Missing struct {
	Agent   string `json:"agent"`
	System  System `json:"system"`
	Package string `json:"package"` // the llm-agents attribute the image wraps
	Reason  string `json:"reason"`
}

func (m Missing) String() string {
	return fmt.Sprintf("%s on %s: %s", m.Agent, m.System, m.Reason)
}

// Plan is what a release of some agents on some systems would build, and
// which of them llm-agents no longer provides where they are expected.
type Plan struct {
	Targets []Target
	Missing []Missing
}

// LoadPlan evaluates the release set and the missing agents of the flake,
// both at once, and keeps the named agents and systems (empty lists keep
// all). A named agent that is missing everywhere is in Missing, not an
// error, unless nothing else is left to release; any other unknown name is
// Select's error.
func LoadPlan(ctx context.Context, f Flake, agents []string, systems []System) (*Plan, error) {
	var all []Target
	var missing []Missing
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { all, err = Load(gctx, f); return err })
	g.Go(func() (err error) { missing, err = loadMissing(gctx, f); return err })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p := &Plan{Missing: selectMissing(missing, agents, systems)}
	known := Agents(all)
	var present []string
	for _, a := range agents {
		vanished := slices.ContainsFunc(p.Missing, func(m Missing) bool { return m.Agent == a })
		if slices.Contains(known, a) || !vanished {
			present = append(present, a)
		}
	}
	if len(agents) > 0 && len(present) == 0 {
		lines := make([]string, len(p.Missing))
		for i, m := range p.Missing {
			lines[i] = m.String()
		}
		return nil, fmt.Errorf("no release target: llm-agents no longer provides %s: %s", strings.Join(agents, ", "), strings.Join(lines, "; "))
	}
	var err error
	p.Targets, err = Select(all, present, systems)
	return p, err
}

// loadMissing reads the flake's missingAgents output with one nix eval. A
// flake without that output (one built with lib.mkAgentImage alone) has no
// list of expected agents, so nothing is missing from it.
func loadMissing(ctx context.Context, flake Flake, opts ...Option) ([]Missing, error) {
	o := makeOptions(opts)
	args := append([]string{"eval", "--json", flake.Installable("missingAgents")}, flake.OverrideArgs()...)
	out, err := o.nix(ctx, args...)
	var nerr *Error
	if errors.As(err, &nerr) && strings.Contains(nerr.Stderr, "does not provide attribute") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the missing agents of flake %s: %w", flake.Installable("missingAgents"), err)
	}
	return ParseMissing(out)
}

// ParseMissing turns the JSON of the flake's missingAgents output,
// { system: { agent: { package, reason } } }, into a list sorted like
// targets.
func ParseMissing(data []byte) ([]Missing, error) {
	var bySystem map[System]map[string]struct {
		Package string `json:"package"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal(data, &bySystem); err != nil {
		return nil, fmt.Errorf("decoding the flake's missing agents: %w", err)
	}
	var out []Missing
	for system, agents := range bySystem {
		if _, err := system.Platform(); err != nil {
			continue
		}
		for agent, m := range agents {
			out = append(out, Missing{Agent: agent, System: system, Package: m.Package, Reason: m.Reason})
		}
	}
	slices.SortFunc(out, func(a, b Missing) int { return order(a.Agent, a.System, b.Agent, b.System) })
	return out, nil
}

// selectMissing keeps the missing agents among the named agents and
// systems; empty lists keep all.
func selectMissing(missing []Missing, agents []string, systems []System) []Missing {
	var out []Missing
	for _, m := range missing {
		if (len(agents) == 0 || slices.Contains(agents, m.Agent)) && (len(systems) == 0 || slices.Contains(systems, m.System)) {
			out = append(out, m)
		}
	}
	return out
}
