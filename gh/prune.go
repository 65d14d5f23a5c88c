package gh

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-github/v62/github"
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
// attestation) and the tags pointing at it.
type Version struct {
	ID     int64
	Digest string
	Tags   []string
}

// PrunePlan is what Prune would delete, and why the rest stays.
type PrunePlan struct {
	Package Package
	// Keep holds every version reachable from a kept tag: directly, as a
	// child of an index, or as the signature or attestation of either.
	Keep []Version
	// Delete holds the versions nothing kept reaches.
	Delete []Version
	// ExpiredTags are the dated tags beyond the newest N; their versions
	// are deleted unless something else still reaches them.
	ExpiredTags []string
}

var (
	datedTag = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	// Cosign's tag-based storage: sha256-<hex>.sig/.att/.sbom, and the OCI
	// referrers tag schema fallback sha256-<hex>. They are reachable through
	// the manifest they are about, never roots of their own.
	attachedTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})(\.(sig|att|sbom))?$`)
)

// PlanPrune lists a package's versions, keeps the newest keepDated dated
// tags (YYYY-MM-DD) and every other tag, and walks the registry from them:
// index children, signatures and attestations of everything reached are
// kept. Anything the walk cannot read aborts the plan, so a registry error
// never turns into a deletion.
func (c *Client) PlanPrune(ctx context.Context, pkg Package, keepDated int, ropts ...remote.Option) (*PrunePlan, error) {
	if keepDated < 1 {
		return nil, fmt.Errorf("keeping %d dated tags would delete today's release: keep at least 1", keepDated)
	}
	versions, err := c.PackageVersions(ctx, pkg)
	if err != nil {
		return nil, err
	}
	byDigest := map[string]Version{}
	attached := map[string][]string{} // subject digest -> digests of its signatures etc.
	var dates []string
	for _, v := range versions {
		byDigest[v.Digest] = v
		for _, t := range v.Tags {
			if m := attachedTag.FindStringSubmatch(t); m != nil {
				subject := "sha256:" + m[1]
				attached[subject] = append(attached[subject], v.Digest)
			}
			if datedTag.MatchString(t) {
				dates = append(dates, t)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dates)))
	dates = dedupe(dates)
	kept := map[string]bool{}
	plan := &PrunePlan{Package: pkg}
	for i, d := range dates {
		if i < keepDated {
			kept[d] = true
		} else {
			plan.ExpiredTags = append(plan.ExpiredTags, d)
		}
	}

	var queue []string
	for _, v := range versions {
		for _, t := range v.Tags {
			if attachedTag.MatchString(t) || (datedTag.MatchString(t) && !kept[t]) {
				continue
			}
			queue = append(queue, v.Digest)
			break
		}
	}
	reached := map[string]bool{}
	visit := func(queue []string) error {
		for len(queue) > 0 {
			d := queue[0]
			queue = queue[1:]
			if reached[d] {
				continue
			}
			reached[d] = true
			children, err := manifestChildren(ctx, pkg.Repository, d, ropts)
			if err != nil {
				return err
			}
			queue = append(queue, children...)
			queue = append(queue, attached[d]...)
		}
		return nil
	}
	if err := visit(queue); err != nil {
		return nil, err
	}
	// OCI 1.1 referrers (a manifest with a subject) are untagged: keep those
	// whose subject is kept, until nothing changes.
	subjects := map[string]string{}
	for changed := true; changed; {
		changed = false
		for _, v := range versions {
			if reached[v.Digest] {
				continue
			}
			subject, ok := subjects[v.Digest]
			if !ok {
				var err error
				if subject, err = manifestSubject(ctx, pkg.Repository, v.Digest, ropts); err != nil {
					return nil, err
				}
				subjects[v.Digest] = subject
			}
			if subject != "" && reached[subject] {
				if err := visit([]string{v.Digest}); err != nil {
					return nil, err
				}
				changed = true
			}
		}
	}
	for _, v := range versions {
		if reached[v.Digest] {
			plan.Keep = append(plan.Keep, v)
		} else {
			plan.Delete = append(plan.Delete, v)
		}
	}
	return plan, nil
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

// manifestChildren returns the manifests an index lists (none for an image).
func manifestChildren(ctx context.Context, repo name.Repository, digest string, ropts []remote.Option) ([]string, error) {
	ref := repo.Digest(digest)
	desc, err := remote.Get(ref, append([]remote.Option{remote.WithContext(ctx)}, ropts...)...)
	if err != nil {
		return nil, fmt.Errorf("reading %s (pruning stops rather than guess): %w", ref, err)
	}
	if !desc.MediaType.IsIndex() {
		return nil, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading index %s: %w", ref, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index %s: %w", ref, err)
	}
	out := make([]string, 0, len(m.Manifests))
	for _, child := range m.Manifests {
		out = append(out, child.Digest.String())
	}
	return out, nil
}

// manifestSubject returns the digest an OCI 1.1 referrer is about, or "".
func manifestSubject(ctx context.Context, repo name.Repository, digest string, ropts []remote.Option) (string, error) {
	ref := repo.Digest(digest)
	desc, err := remote.Get(ref, append([]remote.Option{remote.WithContext(ctx)}, ropts...)...)
	if err != nil {
		return "", fmt.Errorf("reading %s (pruning stops rather than guess): %w", ref, err)
	}
	var subject *v1.Descriptor
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return "", err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return "", err
		}
		subject = m.Subject
	} else if desc.MediaType.IsImage() {
		img, err := desc.Image()
		if err != nil {
			return "", err
		}
		m, err := img.Manifest()
		if err != nil {
			return "", err
		}
		subject = m.Subject
	}
	if subject == nil {
		return "", nil
	}
	return subject.Digest.String(), nil
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
			v := Version{ID: pv.GetID(), Digest: pv.GetName()}
			if pv.Metadata != nil && pv.Metadata.Container != nil {
				v.Tags = pv.Metadata.Container.Tags
			}
			if _, err := v1.NewHash(v.Digest); err != nil {
				return nil, fmt.Errorf("package %s version %d: name %q is not a digest", pkg.Name, v.ID, v.Digest)
			}
			out = append(out, v)
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// ContainerPackages lists the owner's container packages whose name starts
// with prefix ("agent-images/").
func (c *Client) ContainerPackages(ctx context.Context, owner, prefix string) ([]string, error) {
	org, err := c.isOrg(ctx, owner)
	if err != nil {
		return nil, err
	}
	opts := &github.PackageListOptions{PackageType: github.String("container"), ListOptions: github.ListOptions{PerPage: 100}}
	var out []string
	for {
		var page []*github.Package
		var resp *github.Response
		err := c.call(ctx, "listing container packages of "+owner, func() (*github.Response, error) {
			var err error
			if org {
				page, resp, err = c.api.Organizations.ListPackages(ctx, owner, opts)
			} else {
				page, resp, err = c.api.Users.ListPackages(ctx, owner, opts)
			}
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, p := range page {
			if strings.HasPrefix(p.GetName(), prefix) {
				out = append(out, p.GetName())
			}
		}
		if resp.NextPage == 0 {
			sort.Strings(out)
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
