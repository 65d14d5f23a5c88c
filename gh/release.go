package gh

import (
	"context"
	"errors"

	"github.com/google/go-github/v62/github"
)

// PublishRelease creates the GitHub Release of tag with body as its notes,
// or replaces the notes if it exists (a re-run of the same tag), so the
// release always lists what the registry holds now.
func (c *Client) PublishRelease(ctx context.Context, tag, body string) (*github.RepositoryRelease, error) {
	if err := c.needRepository("publishing the release of " + tag); err != nil {
		return nil, err
	}
	var existing, written *github.RepositoryRelease
	err := c.call(ctx, "reading the release of "+tag, func() (resp *github.Response, err error) {
		existing, resp, err = c.api.Repositories.GetReleaseByTag(ctx, c.owner, c.repo, tag)
		return resp, err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		err = c.call(ctx, "creating the release of "+tag, func() (resp *github.Response, err error) {
			written, resp, err = c.api.Repositories.CreateRelease(ctx, c.owner, c.repo, &github.RepositoryRelease{
				TagName: github.String(tag), Name: github.String(tag), Body: github.String(body),
			})
			return resp, err
		})
	case err == nil:
		err = c.call(ctx, "updating the release of "+tag, func() (resp *github.Response, err error) {
			written, resp, err = c.api.Repositories.EditRelease(ctx, c.owner, c.repo, existing.GetID(), &github.RepositoryRelease{Body: github.String(body)})
			return resp, err
		})
	}
	return written, err
}
