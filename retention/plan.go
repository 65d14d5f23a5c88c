package retention

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/tags"
)

// Reason is why a plan keeps or deletes a version: the class that decided
// (a class of Rules, Reached or Orphan) and the sentence the dry run prints
// for it.
type Reason struct {
	Keep  bool
	Class tags.Class
	Why   string
}

// Decision is one version and why it stays or goes.
type Decision struct {
	gh.Version
	Reason Reason
}

// Plan is what prune would delete, and why the rest stays.
type Plan struct {
	// WindowStart is 00:00 UTC of the oldest kept dated tag; zero while
	// there are fewer dated tags than the policy keeps.
	WindowStart time.Time
	// Keep holds every version a tag keeps, and everything a kept version
	// reaches: index children, signatures, attestations, OCI 1.1 referrers.
	Keep []Decision
	// Delete holds the rest: indexes first, then images, then signatures
	// and attestations, so a prune cut short leaves no index without its
	// children.
	Delete []Decision
}

// Deletions are the versions to delete, in the order to delete them.
func (p *Plan) Deletions() []gh.Version {
	out := make([]gh.Version, len(p.Delete))
	for i, d := range p.Delete {
		out[i] = d.Version
	}
	return out
}

// Group is the versions a plan keeps, or deletes, for one reason.
type Group struct {
	Reason   Reason
	Versions []gh.Version
}

// Groups returns the plan by reason: what is kept, then what is deleted,
// each in the order of Rules.
func (p *Plan) Groups() []Group {
	byRank := func(ds []Decision) []Decision {
		ds = slices.Clone(ds)
		slices.SortStableFunc(ds, func(a, b Decision) int { return rank(a.Reason.Class) - rank(b.Reason.Class) })
		return ds
	}
	var groups []Group
	for _, d := range slices.Concat(byRank(p.Keep), byRank(p.Delete)) {
		if len(groups) == 0 || groups[len(groups)-1].Reason != d.Reason {
			groups = append(groups, Group{Reason: d.Reason})
		}
		g := &groups[len(groups)-1]
		g.Versions = append(g.Versions, d.Version)
	}
	return groups
}

// Decide sorts a package's versions by the policy's Rules into the tags that
// keep their manifests; then it walks the registry repository from those:
// index children, signatures, attestations and OCI 1.1 referrers of
// everything reached are kept too, and the rest is to be deleted. Anything
// the walk cannot read aborts the plan, so a registry error never turns into
// a deletion.
func Decide(ctx context.Context, repo name.Repository, versions []gh.Version, policy Policy, ropts ...remote.Option) (*Plan, error) {
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	// One puller for the whole walk: it pings the registry and exchanges
	// the token once, not once per manifest.
	puller, err := remote.NewPuller(append([]remote.Option{remote.WithContext(ctx)}, ropts...)...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", repo, err)
	}
	p := &planner{
		ctx: ctx, repo: repo, puller: puller, versions: versions, policy: policy, keptDates: map[string]bool{},
		attached: map[string][]string{}, links: map[string]links{},
		reached: map[string]bool{}, listed: map[string]bool{}, roots: map[string]*Rule{},
	}
	var dates []string
	for _, v := range versions {
		for _, t := range v.Tags {
			if subject, ok := tags.AttachedTo(t); ok {
				p.attached[subject] = append(p.attached[subject], v.Digest)
			}
			if tags.Of(t, p.policy.Extra...) == tags.Dated {
				dates = append(dates, t)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dates)))
	dates = slices.Compact(dates)
	for _, d := range dates[:min(len(dates), policy.KeepDated)] {
		p.keptDates[d] = true
	}
	if len(dates) >= policy.KeepDated {
		p.start, _ = time.Parse(time.DateOnly, dates[policy.KeepDated-1])
	}
	if err := p.readAll(); err != nil {
		return nil, err
	}
	if err := p.walkFromRoots(); err != nil {
		return nil, err
	}
	return p.plan(), nil
}

// planner is the state of one Decide, and what the rules see.
type planner struct {
	ctx       context.Context
	repo      name.Repository
	puller    *remote.Puller
	versions  []gh.Version
	policy    Policy
	keptDates map[string]bool
	// start is 00:00 UTC of the oldest kept date; zero while the window
	// reaches back to the beginning.
	start time.Time
	// merged holds the manifests an index a kept tag reaches lists; nil
	// until the first walk is done.
	merged map[string]bool
	// attached: subject digest -> digests tagged as its .sig/.att/.sbom.
	attached map[string][]string
	links    map[string]links
	reached  map[string]bool
	// listed holds every manifest a reached index lists: the merged parts.
	listed map[string]bool
	// roots: digest -> the rule whose tag keeps it.
	roots map[string]*Rule
}

// links is what one manifest points at.
type links struct {
	index    bool
	children []string
	subject  string
}

// readAll reads every version's manifest once, a few at a time: the walk
// needs the children of what it reaches, and the referrer check the
// subject of what it does not.
func (p *planner) readAll() error {
	read := make([]links, len(p.versions))
	g, ctx := errgroup.WithContext(p.ctx)
	g.SetLimit(8)
	for i, v := range p.versions {
		g.Go(func() (err error) {
			read[i], err = readLinks(ctx, p.puller, p.repo.Digest(v.Digest))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, v := range p.versions {
		p.links[v.Digest] = read[i]
	}
	return nil
}

// rootRule returns the first rule (in Rules' order) of which v carries a
// tag that keeps it, or nil.
func (p *planner) rootRule(v gh.Version) *Rule {
	for i := range Rules {
		r := &Rules[i]
		if slices.ContainsFunc(v.Tags, func(t string) bool { return tags.Of(t, p.policy.Extra...) == r.Class }) && r.keeps(p, v) {
			return r
		}
	}
	return nil
}

// walkFromRoots keeps what the tags keep and everything that reaches. The
// first pass leaves out staging's "unmerged" rule, which needs to know what
// the kept indexes list, and referrers; later passes add them, until
// nothing changes.
func (p *planner) walkFromRoots() error {
	for pass, changed := 0, true; changed; pass++ {
		changed = pass == 0
		for _, v := range p.versions {
			if pass > 0 && p.reached[v.Digest] {
				continue
			}
			r := p.rootRule(v)
			if subject := p.links[v.Digest].subject; r == nil && (pass == 0 || subject == "" || !p.reached[subject]) {
				continue
			}
			if r != nil {
				p.roots[v.Digest] = r
			}
			if err := p.visit(v.Digest); err != nil {
				return err
			}
			changed = true
		}
		p.merged = p.listed
	}
	return nil
}

// visit marks a manifest and everything it reaches as kept.
func (p *planner) visit(digest string) error {
	queue := []string{digest}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if p.reached[d] {
			continue
		}
		p.reached[d] = true
		l, ok := p.links[d]
		if !ok { // a manifest the package list did not name
			var err error
			if l, err = readLinks(p.ctx, p.puller, p.repo.Digest(d)); err != nil {
				return err
			}
			p.links[d] = l
		}
		for _, child := range l.children {
			p.listed[child] = true
		}
		queue = append(queue, l.children...)
		queue = append(queue, p.attached[d]...)
	}
	return nil
}

// plan turns the walk into decisions with reasons.
func (p *planner) plan() *Plan {
	plan := &Plan{WindowStart: p.start}
	// Versions something in the package lists or refers to: an untagged one
	// of those goes with its parent, the others are orphans.
	pointedAt := map[string]bool{}
	for _, v := range p.versions {
		l := p.links[v.Digest]
		for _, c := range l.children {
			pointedAt[c] = true
		}
		if l.subject != "" {
			pointedAt[v.Digest] = true
		}
	}
	for _, v := range p.versions {
		keep := p.reached[v.Digest]
		var r Reason
		switch root := p.roots[v.Digest]; {
		case root != nil:
			r = Reason{Keep: true, Class: root.Class, Why: p.policy.fill(root.kept)}
		case keep:
			r = Reason{Keep: true, Class: Reached, Why: "an index child, .sig/.att or OCI 1.1 referrer of a kept version"}
		case len(v.Tags) > 0 || pointedAt[v.Digest]:
			// The first class of its tags, in Rules' order.
			first := Untagged
			for _, t := range v.Tags {
				if c := tags.Of(t, p.policy.Extra...); rank(c) < rank(first) {
					first = c
				}
			}
			r = Reason{Class: first, Why: p.policy.fill(Rules[rank(first)].gone)}
		default:
			r = Reason{Class: Orphan, Why: "untagged, and nothing in the package lists it or refers to it: left by a failed or cancelled run"}
		}
		if keep {
			plan.Keep = append(plan.Keep, Decision{Version: v, Reason: r})
		} else {
			plan.Delete = append(plan.Delete, Decision{Version: v, Reason: r})
		}
	}
	sort.SliceStable(plan.Delete, func(i, j int) bool {
		return p.deleteRank(plan.Delete[i].Version) < p.deleteRank(plan.Delete[j].Version)
	})
	return plan
}

// deleteRank orders deletions: indexes, then images, then what is about
// another manifest (signatures, attestations, referrers).
func (p *planner) deleteRank(v gh.Version) int {
	l := p.links[v.Digest]
	switch {
	case l.index && l.subject == "":
		return 0
	case l.subject != "" || slices.ContainsFunc(v.Tags, func(t string) bool { return tags.Of(t) == tags.Attached }):
		return 2
	}
	return 1
}

// readLinks reads one manifest: the manifests an index lists, and the
// subject of an OCI 1.1 referrer (image or index).
func readLinks(ctx context.Context, puller *remote.Puller, ref name.Digest) (links, error) {
	desc, err := puller.Get(ctx, ref)
	if err != nil {
		return links{}, fmt.Errorf("reading %s (pruning stops rather than guess): %w", ref, err)
	}
	var m struct {
		Manifests []v1.Descriptor `json:"manifests"`
		Subject   *v1.Descriptor  `json:"subject"`
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return links{}, fmt.Errorf("reading %s: %w", ref, err)
	}
	l := links{index: desc.MediaType.IsIndex()}
	for _, child := range m.Manifests {
		if l.index {
			l.children = append(l.children, child.Digest.String())
		}
	}
	if m.Subject != nil {
		l.subject = m.Subject.Digest.String()
	}
	return l, nil
}
