// Package retention decides which GHCR package versions prune deletes: the
// policy (Rules, one per class of tag), and the walk from what the tags keep
// to everything a kept manifest reaches (Decide). Listing and deleting the
// versions is gh's; reading the manifests is the registry's.
package retention

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/tags"
)

// Policy is what prune is asked to keep. It is the caller's choice and is
// never changed while planning.
type Policy struct {
	// KeepDated is how many dated releases (YYYY-MM-DD tags), newest first,
	// are kept. Their span is the window: from 00:00 UTC of the oldest kept
	// date on (all time, while there are fewer dates than KeepDated).
	KeepDated int
	// PreviewMaxAge is how long a pr-<N> preview tag keeps its manifest.
	PreviewMaxAge time.Duration
	// StagingGrace is how long a split-mode staging tag keeps its per-arch
	// image whether or not it has been merged.
	StagingGrace time.Duration
	// Now is when the plan is made; every age is measured from it.
	Now time.Time
	// Extra are the tags releases move besides their own (release --tag):
	// kept whatever their shape.
	Extra []string
}

// Default is the policy `release prune` applies without flags.
func Default(now time.Time) Policy {
	return Policy{KeepDated: 30, PreviewMaxAge: 14 * 24 * time.Hour, StagingGrace: 24 * time.Hour, Now: now}
}

// Validate says why a policy cannot be applied.
func (p Policy) Validate() error {
	switch {
	case p.KeepDated < 1:
		return &tags.PolicyError{Field: "KeepDated", Err: fmt.Errorf("%d would delete today's release: keep at least 1 dated tag", p.KeepDated)}
	case p.PreviewMaxAge <= 0:
		return &tags.PolicyError{Field: "PreviewMaxAge", Err: fmt.Errorf("%s: want a positive age such as 14d", FormatAge(p.PreviewMaxAge))}
	case p.StagingGrace <= 0:
		return &tags.PolicyError{Field: "StagingGrace", Err: fmt.Errorf("%s: want a positive age such as 24h", FormatAge(p.StagingGrace))}
	case p.Now.IsZero():
		return fmt.Errorf("retention policy has no current time to measure ages from")
	}
	return nil
}

// Reasons besides the tag classes a plan keeps or deletes a version for.
const (
	// Untagged is the rule of a version with no tag.
	Untagged tags.Class = "untagged"
	// Reached is the reason of a kept version that no tag of its own keeps,
	// but a kept version reaches.
	Reached tags.Class = "reached"
	// Orphan is the reason of an untagged version that no version of the
	// package lists or refers to: what a failed or cancelled run pushed.
	Orphan tags.Class = "orphan"
)

// Rule is one class of tags and whether a tag of it keeps the manifest it
// points at. Rules, in order, is the whole policy: Decide applies it, and
// the dry run and docs/retention.md print it.
type Rule struct {
	Class tags.Class
	// Tags says which tags belong to the class, for people (Markdown).
	Tags string
	// keeps is the rule for one version carrying a tag of the class.
	keeps func(p *planner, v gh.Version) bool
	// kept and gone say what keeps a version, and why a version whose tags
	// are all of the class goes, with the policy's values for {keep},
	// {grace} and {max-age}.
	kept, gone string
}

// Kept says, for a policy's values, what keeps a manifest of the class.
func (r Rule) Kept(p Policy) string { return p.fill(r.kept) }

func (p Policy) fill(s string) string {
	return strings.NewReplacer("{keep}", fmt.Sprint(p.KeepDated), "{grace}", FormatAge(p.StagingGrace),
		"{max-age}", FormatAge(p.PreviewMaxAge)).Replace(s)
}

func always(*planner, gh.Version) bool { return true }
func never(*planner, gh.Version) bool  { return false }

// Rules is the retention policy as data, in the order a version carrying
// tags of several classes is attributed to them.
var Rules = []Rule{
	{Class: tags.Latest, Tags: "`latest`", keeps: always, kept: "always"},
	{Class: tags.Version, Tags: "`1.2.3`, `1.2`, `1`, `v1.2.3`, the agent's version, `--tag` extras: any other tag", keeps: always, kept: "always"},
	{Class: tags.Dated, Tags: "`YYYY-MM-DD`",
		keeps: func(p *planner, v gh.Version) bool {
			return slices.ContainsFunc(v.Tags, func(t string) bool { return p.keptDates[t] })
		},
		kept: "while among the newest {keep} dates (`--keep`); they span the window",
		gone: "dated tag past the newest {keep} dates"},
	{Class: tags.SHA, Tags: "`sha-<commit>`",
		keeps: func(p *planner, v gh.Version) bool { return p.inWindow(v) },
		kept:  "while the version was pushed or tagged inside the window; after that only while a kept tag reaches it",
		gone:  "sha- tag from before the window, and no kept tag reaches it"},
	{Class: tags.Staging, Tags: "`staging-<key>-<os>-<arch>`",
		keeps: func(p *planner, v gh.Version) bool {
			// Unmerged parts wait inside the window for a merge to retry;
			// merged ones live exactly as long as an index that lists them.
			return p.age(v) < p.policy.StagingGrace || p.merged != nil && !p.merged[v.Digest] && p.inWindow(v)
		},
		kept: "while younger than {grace}; then, while unmerged (no kept index lists the part), inside the window",
		gone: "staging part older than {grace}, from before the window, and no kept index lists it"},
	{Class: tags.Preview, Tags: "`pr-<N>`",
		keeps: func(p *planner, v gh.Version) bool { return p.age(v) < p.policy.PreviewMaxAge },
		kept:  "while younger than {max-age} (`--pr-max-age`)",
		gone:  "pr- preview older than {max-age}"},
	{Class: tags.Attached, Tags: "`sha256-<digest>.sig`, `.att`, `.sbom`", keeps: never,
		kept: "never on its own: with the manifest it signs or attests",
		gone: "signature or attestation of a manifest that goes"},
	{Class: Untagged, Tags: "(no tag)", keeps: never,
		kept: "never on its own: while a kept index lists it, or it is an OCI 1.1 referrer of a kept manifest",
		gone: "untagged, and only versions that go list it or are its subject"},
}

// rank orders reasons as Rules does, then reached, then orphan.
func rank(c tags.Class) int {
	if i := slices.IndexFunc(Rules, func(r Rule) bool { return r.Class == c }); i >= 0 {
		return i
	}
	if c == Reached {
		return len(Rules)
	}
	return len(Rules) + 1
}

// FormatAge writes whole days as "14d", anything else as Go does ("36h0m0s").
func FormatAge(d time.Duration) string {
	if d >= 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// ParseAge reads an age as "14d" (days) or a Go duration ("36h").
func ParseAge(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("age %q: want days such as 14d, or a duration such as 36h", s)
	}
	return d, nil
}

// touched is the last time GHCR says a version changed: its push, or a
// later tag moved onto it where GHCR records that in updated_at.
func touched(v gh.Version) time.Time {
	if v.Updated.After(v.Created) {
		return v.Updated
	}
	return v.Created
}

func (p *planner) age(v gh.Version) time.Duration { return p.policy.Now.Sub(touched(v)) }

func (p *planner) inWindow(v gh.Version) bool { return !touched(v).Before(p.start) }
