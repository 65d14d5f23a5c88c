package gh

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-github/v62/github"
)

// Package is one GHCR container package: its owner and its name in the
// GitHub API ("agent-images/pi").
type Package struct{ Owner, Name string }

// PackageFor maps a registry repository (ghcr.io/owner/agent-images/pi) to
// its package: the first path segment is the owner, the rest the name.
func PackageFor(repo name.Repository) (Package, error) {
	owner, pkg, ok := strings.Cut(repo.RepositoryStr(), "/")
	if !ok || pkg == "" {
		return Package{}, fmt.Errorf("repository %s: want <registry>/<owner>/<package>", repo)
	}
	return Package{Owner: owner, Name: pkg}, nil
}

// Version is one package version: a manifest (image, index, signature or
// attestation), its tags, and when GHCR created and last updated it.
type Version struct {
	ID      int64
	Digest  string
	Tags    []string
	Created time.Time
	Updated time.Time
}

// PackageVersions lists every version of a package, following pagination.
// Ages decide what is pruned, so a version without a creation time, or
// whose name is not a digest, is an error rather than a guess.
func (c *Client) PackageVersions(ctx context.Context, pkg Package) ([]Version, error) {
	org, err := c.isOrg(ctx, pkg.Owner)
	if err != nil {
		return nil, err
	}
	// go-github v62's user package calls, unlike its organisation calls, put
	// the name into the path unescaped: GitHub then reads "agent-images" of
	// "agent-images/pi" as the package and answers 404.
	list, path := c.api.Users.PackageGetAllVersions, url.PathEscape(pkg.Name)
	if org {
		list, path = c.api.Organizations.PackageGetAllVersions, pkg.Name
	}
	opts := &github.PackageListOptions{}
	var out []Version
	err = c.pages(ctx, fmt.Sprintf("listing versions of package %s/%s", pkg.Owner, pkg.Name), &opts.ListOptions, func() (*github.Response, error) {
		page, resp, err := list(ctx, pkg.Owner, "container", path, opts)
		for _, pv := range page {
			v := Version{ID: pv.GetID(), Digest: pv.GetName(), Created: pv.GetCreatedAt().Time, Updated: pv.GetUpdatedAt().Time}
			if pv.Metadata != nil && pv.Metadata.Container != nil {
				v.Tags = pv.Metadata.Container.Tags
			}
			out = append(out, v)
		}
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	for _, v := range out {
		if _, err := v1.NewHash(v.Digest); err != nil {
			return nil, fmt.Errorf("package %s version %d: name %q is not a digest", pkg.Name, v.ID, v.Digest)
		}
		if v.Created.IsZero() {
			return nil, fmt.Errorf("package %s version %d (%s) has no created_at", pkg.Name, v.ID, v.Digest)
		}
	}
	return out, nil
}

// DeleteVersions deletes versions of a package, in the order given. It goes
// on past a version GitHub refuses to delete (a popular public version, say)
// and reports all refusals together; a version already gone counts as
// deleted.
func (c *Client) DeleteVersions(ctx context.Context, pkg Package, versions []Version) (deleted int, err error) {
	org, err := c.isOrg(ctx, pkg.Owner)
	if err != nil {
		return 0, err
	}
	del, path := c.api.Users.PackageDeleteVersion, url.PathEscape(pkg.Name) // as PackageVersions
	if org {
		del, path = c.api.Organizations.PackageDeleteVersion, pkg.Name
	}
	var errs []error
	for _, v := range versions {
		err := c.call(ctx, fmt.Sprintf("deleting %s version %d (%s)", pkg.Name, v.ID, v.Digest), func() (*github.Response, error) {
			return del(ctx, pkg.Owner, "container", path, v.ID)
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

// isOrg tells organisation packages (/orgs/...) from user packages
// (/users/...): the API paths differ.
func (c *Client) isOrg(ctx context.Context, owner string) (bool, error) {
	if org, ok := c.orgs[owner]; ok {
		return org, nil
	}
	var u *github.User
	err := c.call(ctx, "looking up owner "+owner, func() (resp *github.Response, err error) {
		u, resp, err = c.api.Users.Get(ctx, owner)
		return resp, err
	})
	if err != nil {
		return false, err
	}
	c.orgs[owner] = u.GetType() == "Organization"
	return c.orgs[owner], nil
}
