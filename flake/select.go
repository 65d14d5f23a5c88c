package flake

import (
	"fmt"
	"slices"
	"strings"
)

// Select keeps the targets of the named agents and systems; empty lists keep
// all. An unknown name is an error that lists the valid names and suggests
// the closest one.
func Select(targets []Target, agents []string, systems []System) ([]Target, error) {
	known := Agents(targets)
	wantAgent := map[string]bool{}
	for _, a := range agents {
		if !slices.Contains(known, a) {
			return nil, unknownError("agent", a, known)
		}
		wantAgent[a] = true
	}
	wantSystem := map[System]bool{}
	for _, s := range systems {
		if _, err := s.Platform(); err != nil {
			names := make([]string, len(Systems))
			for i, s := range Systems {
				names[i] = string(s)
			}
			return nil, unknownError("system", string(s), names)
		}
		wantSystem[s] = true
	}
	var out []Target
	for _, t := range targets {
		if len(wantAgent) > 0 && !wantAgent[t.Agent] {
			continue
		}
		if len(wantSystem) > 0 && !wantSystem[t.System] {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no release target for agents %v on systems %v: the flake builds none of those agents for those systems", agents, systems)
	}
	return out, nil
}

// UnknownError names a value that is not one of the valid names.
type UnknownError struct {
	Kind    string
	Name    string
	Valid   []string
	Closest string
}

func (e *UnknownError) Error() string {
	msg := fmt.Sprintf("unknown %s %q", e.Kind, e.Name)
	if e.Closest != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Closest)
	}
	return msg + fmt.Sprintf("; valid %ss: %s", e.Kind, strings.Join(e.Valid, ", "))
}

func unknownError(kind, name string, valid []string) error {
	sorted := slices.Sorted(slices.Values(valid))
	return &UnknownError{Kind: kind, Name: name, Valid: sorted, Closest: closest(name, sorted)}
}

// closest returns the valid name a user most likely meant: one that starts
// with or contains what they typed ("claude" for claude-code), else the
// nearest by edit distance if it is near enough to be a plausible typo.
func closest(name string, valid []string) string {
	partial := ""
	for _, v := range valid {
		if len(name) >= 2 && strings.Contains(v, name) && (partial == "" || len(v) < len(partial)) {
			partial = v
		}
	}
	if partial != "" {
		return partial
	}
	best, bestDist := "", -1
	for _, v := range valid {
		d := editDistance(name, v)
		if bestDist < 0 || d < bestDist {
			best, bestDist = v, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(name)/2) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ParseSystems parses a comma-separated --system value.
func ParseSystems(values []string) []System {
	var out []System
	for _, v := range values {
		out = append(out, System(strings.TrimSpace(v)))
	}
	return out
}
