// Package gh owns the GitHub API calls a release makes: the GitHub Release of
// a v* tag, listing and deleting GHCR package versions, and the issue that
// tracks a failing nightly release. Every call goes through the shared
// retrying transport; GitHub's rate limits are waited out here.
package gh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/nothingnesses/agent-images/internal/transport"
)

// Client makes the release's GitHub API calls for one repository.
type Client struct {
	api   *github.Client
	owner string
	repo  string
	// orgs caches whether an owner is an organisation (see isOrg).
	orgs map[string]bool
}

// tries is how often a call is made while it is rate limited.
const tries = 4

// maxRateLimitWait bounds how long one call waits for a rate limit to lift:
// past that the release fails with the rate-limit error instead of hanging.
var maxRateLimitWait = 5 * time.Minute

type options struct{ baseURL, token string }

// Option configures New.
type Option func(*options)

// WithBaseURL points the client at a GitHub API other than api.github.com
// (GitHub Enterprise Server, or GITHUB_API_URL under Actions).
func WithBaseURL(u string) Option { return func(o *options) { o.baseURL = u } }

// WithToken authenticates every call with a token (GITHUB_TOKEN).
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// New returns a client for the repository "owner/name". The repository may
// be empty for calls that name their owner themselves (package versions).
func New(repository string, opts ...Option) (*Client, error) {
	owner, repo, ok := strings.Cut(repository, "/")
	if repository != "" && (!ok || owner == "" || repo == "" || strings.Contains(repo, "/")) {
		return nil, fmt.Errorf("repository %q: want owner/name", repository)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	api := github.NewClient(&http.Client{Transport: transport.New()})
	if o.token != "" {
		api = api.WithAuthToken(o.token)
	}
	if o.baseURL != "" {
		u, err := url.Parse(strings.TrimSuffix(o.baseURL, "/") + "/")
		if err != nil {
			return nil, fmt.Errorf("GitHub API URL %q: %w", o.baseURL, err)
		}
		api.BaseURL = u
	}
	return &Client{api: api, owner: owner, repo: repo, orgs: map[string]bool{}}, nil
}

// needRepository fails calls that act on the repository when none was given.
func (c *Client) needRepository(what string) error {
	if c.owner == "" {
		return fmt.Errorf("%s: %w", what, ErrNoRepository)
	}
	return nil
}

// call runs one API call, waiting out a secondary rate limit (403 with
// Retry-After) or an exhausted primary limit when the wait is short enough.
// Server errors and 429s are already retried by the shared transport.
func (c *Client) call(ctx context.Context, what string, f func() (*github.Response, error)) error {
	for try := 1; ; try++ {
		resp, err := f()
		if err == nil {
			return nil
		}
		wait, limited := rateLimitWait(err)
		if !limited || try >= tries || wait > maxRateLimitWait {
			return wrap(what, resp, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: waiting for the rate limit: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// pages makes a listing call, through call, page after page up to the
// last: page fetches the page opts names and keeps what it holds.
func (c *Client) pages(ctx context.Context, what string, opts *github.ListOptions, page func() (*github.Response, error)) error {
	opts.PerPage = 100
	for {
		var resp *github.Response
		err := c.call(ctx, what, func() (_ *github.Response, err error) {
			resp, err = page()
			return resp, err
		})
		if err != nil || resp.NextPage == 0 {
			return err
		}
		opts.Page = resp.NextPage
	}
}

func rateLimitWait(err error) (time.Duration, bool) {
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &abuse) {
		// GitHub asks for at least a minute when it names no time.
		if abuse.RetryAfter == nil {
			return time.Minute, true
		}
		return *abuse.RetryAfter, true
	}
	var primary *github.RateLimitError
	if errors.As(err, &primary) {
		return time.Until(primary.Rate.Reset.Time) + time.Second, true
	}
	return 0, false
}

// ErrNotFound is wrapped by errors of calls whose object does not exist.
var ErrNotFound = errors.New("not found")

// ErrNoRepository is wrapped by errors of calls on the repository of a
// client made without one.
var ErrNoRepository = errors.New("the client has no repository")

func wrap(what string, resp *github.Response, err error) error {
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w (%v)", what, ErrNotFound, err)
	}
	if resp != nil && resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s: %w (does the token have the permission this needs?)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
