package gh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-github/v62/github"
	"golang.org/x/sync/errgroup"
)

// Package is one GHCR container package: its name in the GitHub API
// ("agent-images/pi") and the registry repository holding its manifests.
type Package struct {
	Owner      string
	Name       string
	Repository name.Repository
}

// PackageFor maps a registry repository (ghcr.io/owner/agent-images/pi) to
// its package: the first path segment is the owner, the rest the name.
func PackageFor(repo name.Repository) (Package, error) {
	owner, pkg, ok := strings.Cut(repo.RepositoryStr(), "/")
	if !ok || pkg == "" {
		return Package{}, fmt.Errorf("repository %s: want <registry>/<owner>/<package>", repo)
	}
	return Package{Owner: owner, Name: pkg, Repository: repo}, nil
}

// Version is one package version: a manifest (image, index, signature or
// attestation), the tags pointing at it, and when GHCR created it and last
// updated it.
type Version struct {
	ID      int64
	Digest  string
	Tags    []string
	Created time.Time
	Updated time.Time
}

// Reason is why a plan keeps or deletes a version: the class that decided
// (a tag class of RetentionClasses, ClassReached or ClassOrphan) and the
// sentence the dry run prints for it.
type Reason struct {
	Keep  bool
	Class string
	Why   string
}

// Decision is one version and why it stays or goes.
type Decision struct {
	Version
	Reason Reason
}

// TagCount is how many tags of one class are on kept and on deleted versions.
type TagCount struct{ Kept, Deleted int }

// PrunePlan is what Prune would delete, and why the rest stays.
type PrunePlan struct {
	Package Package
	Policy  RetentionPolicy
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
	// Tags counts tags by class on kept and deleted versions; an untagged
	// version counts once, under ClassUntagged.
	Tags map[string]TagCount
}

// Group is the versions a plan keeps, or deletes, for one reason.
type Group struct {
	Reason   Reason
	Versions []Version
}

// Groups returns the plan by reason: what is kept, then what is deleted,
// each in the order of RetentionClasses.
func (p *PrunePlan) Groups() []Group {
	var groups []Group
	at := map[Reason]int{}
	for _, ds := range [][]Decision{p.Keep, p.Delete} {
		for _, d := range ds {
			i, ok := at[d.Reason]
			if !ok {
				i = len(groups)
				at[d.Reason] = i
				groups = append(groups, Group{Reason: d.Reason})
			}
			groups[i].Versions = append(groups[i].Versions, d.Version)
		}
	}
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i].Reason, groups[j].Reason
		if a.Keep != b.Keep {
			return a.Keep
		}
		return classRank(a.Class) < classRank(b.Class)
	})
	return groups
}

// classRank orders reasons as RetentionClasses does, then reached, orphan.
func classRank(name string) int {
	for i, c := range RetentionClasses {
		if c.Name == name {
			return i
		}
	}
	if name == ClassReached {
		return len(RetentionClasses)
	}
	return len(RetentionClasses) + 1
}

// WritePlan prints one agent's plan as the dry run shows it: how many
// versions each reason keeps, then every version each reason deletes.
func WritePlan(w io.Writer, agent string, plan *PrunePlan) {
	window := "all time (fewer dated tags than --keep)"
	if !plan.WindowStart.IsZero() {
		window = "from " + plan.WindowStart.Format(time.DateOnly)
	}
	fmt.Fprintf(w, "%s: keep %d versions, delete %d; window %s\n", agent, len(plan.Keep), len(plan.Delete), window)
	for _, g := range plan.Groups() {
		verb := "delete"
		if g.Reason.Keep {
			verb = "keep"
		}
		fmt.Fprintf(w, "  %s %d, %s: %s\n", verb, len(g.Versions), g.Reason.Class, plain(g.Reason.Why))
		if g.Reason.Keep {
			continue
		}
		for _, v := range g.Versions {
			tags := ""
			if len(v.Tags) > 0 {
				tags = " (" + strings.Join(v.Tags, ", ") + ")"
			}
			fmt.Fprintf(w, "    %d %s%s\n", v.ID, v.Digest, tags)
		}
	}
}

// PlanPrune lists a package's versions and decides, by the policy's tag
// classes (RetentionClasses), which tags keep their manifests; then it walks
// the registry from those: index children, signatures, attestations and OCI
// 1.1 referrers of everything reached are kept too, and the rest is to be
// deleted. Anything the walk cannot read aborts the plan, so a registry
// error never turns into a deletion.
func (c *Client) PlanPrune(ctx context.Context, pkg Package, policy RetentionPolicy, ropts ...remote.Option) (*PrunePlan, error) {
	if err := policy.validate(); err != nil {
		return nil, err
	}
	versions, err := c.PackageVersions(ctx, pkg)
	if err != nil {
		return nil, err
	}
	// One puller for the whole walk: it pings the registry and exchanges
	// the token once, not once per manifest.
	puller, err := remote.NewPuller(append([]remote.Option{remote.WithContext(ctx)}, ropts...)...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", pkg.Repository, err)
	}
	p := &planner{
		ctx: ctx, repo: pkg.Repository, puller: puller, versions: versions,
		attached: map[string][]string{}, links: map[string]manifestLinks{},
		reached: map[string]bool{}, listed: map[string]bool{}, roots: map[string]*TagClass{},
	}
	p.window = window{policy: policy, keptDates: map[string]bool{}}
	var dates []string
	for _, v := range versions {
		for _, t := range v.Tags {
			if m := attachedTag.FindStringSubmatch(t); m != nil {
				subject := "sha256:" + m[1]
				p.attached[subject] = append(p.attached[subject], v.Digest)
			}
			if isDated(t) {
				dates = append(dates, t)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dates)))
	dates = dedupe(dates)
	for i, d := range dates {
		if i < policy.KeepDated {
			p.window.keptDates[d] = true
		}
	}
	if len(dates) >= policy.KeepDated {
		p.window.start, _ = time.Parse(time.DateOnly, dates[policy.KeepDated-1])
	}
	if err := p.readAll(); err != nil {
		return nil, err
	}
	if err := p.walkFromRoots(); err != nil {
		return nil, err
	}
	return p.plan(pkg), nil
}

// planner is the state of one PlanPrune.
type planner struct {
	ctx      context.Context
	repo     name.Repository
	puller   *remote.Puller
	versions []Version
	window   window
	// attached: subject digest -> digests tagged as its .sig/.att/.sbom.
	attached map[string][]string
	links    map[string]manifestLinks
	reached  map[string]bool
	// listed holds every manifest a reached index lists: the merged parts.
	listed map[string]bool
	// roots: digest -> the class whose tag keeps it.
	roots map[string]*TagClass
}

// manifestLinks is what one manifest points at.
type manifestLinks struct {
	index    bool
	children []string
	subject  string
}

// readAll reads every version's manifest once, a few at a time: the walk
// needs the children of what it reaches, and the referrer check the
// subject of what it does not.
func (p *planner) readAll() error {
	read := make([]manifestLinks, len(p.versions))
	g, ctx := errgroup.WithContext(p.ctx)
	g.SetLimit(8)
	for i, v := range p.versions {
		g.Go(func() error {
			l, err := readLinks(ctx, p.puller, p.repo.Digest(v.Digest))
			read[i] = l
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

// linksOf returns what a manifest points at, reading one the package list
// did not name.
func (p *planner) linksOf(digest string) (manifestLinks, error) {
	if l, ok := p.links[digest]; ok {
		return l, nil
	}
	l, err := readLinks(p.ctx, p.puller, p.repo.Digest(digest))
	if err != nil {
		return l, err
	}
	p.links[digest] = l
	return l, nil
}

// rootClass returns the first class (in RetentionClasses' order) of which v
// carries a tag that keeps it, or nil.
func (p *planner) rootClass(v Version) *TagClass {
	has := map[*TagClass]bool{}
	for _, t := range v.Tags {
		has[classOf(t)] = true
	}
	for i := range RetentionClasses {
		c := &RetentionClasses[i]
		if has[c] && c.keeps(&p.window, v) {
			return c
		}
	}
	return nil
}

// walkFromRoots keeps what the tags keep and everything that reaches. The
// first pass leaves out staging's "unmerged" rule, which needs to know what
// the kept indexes list; later passes add it, and the OCI 1.1 referrers of
// kept manifests, until nothing changes.
func (p *planner) walkFromRoots() error {
	for _, v := range p.versions {
		if c := p.rootClass(v); c != nil {
			p.roots[v.Digest] = c
			if err := p.visit(v.Digest); err != nil {
				return err
			}
		}
	}
	p.window.merged = p.listed
	for changed := true; changed; {
		changed = false
		for _, v := range p.versions {
			if p.reached[v.Digest] {
				continue
			}
			c := p.rootClass(v)
			subject := p.links[v.Digest].subject
			if c == nil && (subject == "" || !p.reached[subject]) {
				continue
			}
			if c != nil {
				p.roots[v.Digest] = c
			}
			if err := p.visit(v.Digest); err != nil {
				return err
			}
			changed = true
		}
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
		l, err := p.linksOf(d)
		if err != nil {
			return err
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
func (p *planner) plan(pkg Package) *PrunePlan {
	policy := p.window.policy
	plan := &PrunePlan{Package: pkg, Policy: policy, WindowStart: p.window.start, Tags: map[string]TagCount{}}
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
		switch c := p.roots[v.Digest]; {
		case c != nil:
			r = Reason{Keep: true, Class: c.Name, Why: c.kept(policy)}
		case keep:
			r = Reason{Keep: true, Class: ClassReached, Why: "an index child, .sig/.att or OCI 1.1 referrer of a kept version"}
		case len(v.Tags) > 0:
			c := p.firstClass(v)
			r = Reason{Class: c.Name, Why: c.gone(policy)}
		case pointedAt[v.Digest]:
			c := classNamed(ClassUntagged)
			r = Reason{Class: c.Name, Why: c.gone(policy)}
		default:
			r = Reason{Class: ClassOrphan, Why: "untagged, and nothing in the package lists it or refers to it: left by a failed or cancelled run"}
		}
		classes := []string{ClassUntagged}
		if len(v.Tags) > 0 {
			classes = classes[:0]
			for _, t := range v.Tags {
				classes = append(classes, classOf(t).Name)
			}
		}
		for _, name := range classes {
			n := plan.Tags[name]
			if keep {
				n.Kept++
			} else {
				n.Deleted++
			}
			plan.Tags[name] = n
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

// firstClass is the first class, in RetentionClasses' order, of v's tags.
func (p *planner) firstClass(v Version) *TagClass {
	best := -1
	for _, t := range v.Tags {
		if r := classRank(classOf(t).Name); best < 0 || r < best {
			best = r
		}
	}
	return &RetentionClasses[best]
}

// deleteRank orders deletions: indexes, then images, then what is about
// another manifest (signatures, attestations, referrers).
func (p *planner) deleteRank(v Version) int {
	l := p.links[v.Digest]
	switch {
	case l.index && l.subject == "":
		return 0
	case l.subject != "":
		return 2
	}
	for _, t := range v.Tags {
		if attachedTag.MatchString(t) {
			return 2
		}
	}
	return 1
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// readLinks reads one manifest: the manifests an index lists, and the
// subject of an OCI 1.1 referrer.
func readLinks(ctx context.Context, puller *remote.Puller, ref name.Digest) (manifestLinks, error) {
	var l manifestLinks
	desc, err := puller.Get(ctx, ref)
	if err != nil {
		return l, fmt.Errorf("reading %s (pruning stops rather than guess): %w", ref, err)
	}
	var subject *v1.Descriptor
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return l, fmt.Errorf("reading index %s: %w", ref, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return l, fmt.Errorf("reading index %s: %w", ref, err)
		}
		l.index = true
		for _, child := range m.Manifests {
			l.children = append(l.children, child.Digest.String())
		}
		subject = m.Subject
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return l, fmt.Errorf("reading image %s: %w", ref, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return l, fmt.Errorf("reading image %s: %w", ref, err)
		}
		subject = m.Subject
	}
	if subject != nil {
		l.subject = subject.Digest.String()
	}
	return l, nil
}

// PackageVersions lists every version of a package, following pagination.
func (c *Client) PackageVersions(ctx context.Context, pkg Package) ([]Version, error) {
	org, err := c.isOrg(ctx, pkg.Owner)
	if err != nil {
		return nil, err
	}
	opts := &github.PackageListOptions{ListOptions: github.ListOptions{PerPage: 100}}
	var out []Version
	for {
		var page []*github.PackageVersion
		var resp *github.Response
		err := c.call(ctx, fmt.Sprintf("listing versions of package %s/%s", pkg.Owner, pkg.Name), func() (*github.Response, error) {
			var err error
			if org {
				page, resp, err = c.api.Organizations.PackageGetAllVersions(ctx, pkg.Owner, "container", pkg.Name, opts)
			} else {
				page, resp, err = c.api.Users.PackageGetAllVersions(ctx, pkg.Owner, "container", userPackagePath(pkg.Name), opts)
			}
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, pv := range page {
			v := Version{ID: pv.GetID(), Digest: pv.GetName(), Created: pv.GetCreatedAt().Time, Updated: pv.GetUpdatedAt().Time}
			if pv.Metadata != nil && pv.Metadata.Container != nil {
				v.Tags = pv.Metadata.Container.Tags
			}
			if _, err := v1.NewHash(v.Digest); err != nil {
				return nil, fmt.Errorf("package %s version %d: name %q is not a digest", pkg.Name, v.ID, v.Digest)
			}
			if v.Created.IsZero() {
				// Ages decide previews and staging parts: never guess one.
				return nil, fmt.Errorf("package %s version %d (%s) has no created_at", pkg.Name, v.ID, v.Digest)
			}
			out = append(out, v)
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Prune deletes the plan's Delete versions. It goes on past a version
// GitHub refuses to delete (a popular public version, say) and reports all
// refusals together; a version already gone counts as deleted.
func (c *Client) Prune(ctx context.Context, plan *PrunePlan) (deleted int, err error) {
	org, err := c.isOrg(ctx, plan.Package.Owner)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, v := range plan.Delete {
		err := c.call(ctx, fmt.Sprintf("deleting %s version %d (%s)", plan.Package.Name, v.ID, v.Digest), func() (*github.Response, error) {
			if org {
				return c.api.Organizations.PackageDeleteVersion(ctx, plan.Package.Owner, "container", plan.Package.Name, v.ID)
			}
			return c.api.Users.PackageDeleteVersion(ctx, plan.Package.Owner, "container", userPackagePath(plan.Package.Name), v.ID)
		})
		switch {
		case err == nil, errors.Is(err, ErrNotFound):
			deleted++
		default:
			errs = append(errs, err)
		}
	}
	return deleted, errors.Join(errs...)
}

// userPackagePath escapes a nested package name ("agent-images/pi") for
// go-github v62's user package calls, which, unlike its organisation calls,
// put the name into the path unescaped: GitHub then reads "agent-images" as
// the package and answers 404.
func userPackagePath(name string) string { return url.PathEscape(name) }

// isOrg tells organisation packages (/orgs/...) from user packages
// (/users/...): the API paths differ.
func (c *Client) isOrg(ctx context.Context, owner string) (bool, error) {
	if org, ok := c.orgs[owner]; ok {
		return org, nil
	}
	var u *github.User
	err := c.call(ctx, "looking up owner "+owner, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		u, resp, err = c.api.Users.Get(ctx, owner)
		return resp, err
	})
	if err != nil {
		return false, err
	}
	org := u.GetType() == "Organization"
	if c.orgs == nil {
		c.orgs = map[string]bool{}
	}
	c.orgs[owner] = org
	return org, nil
}
