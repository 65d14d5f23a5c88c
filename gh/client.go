// Package gh owns the GitHub API calls a release makes: the GitHub Release of
// a v* tag, pruning GHCR package versions by the retention policy, and the
// issue that tracks a failing nightly release. Every call goes through the
// shared retrying transport; GitHub's rate limits are waited out here.
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
	// maxWait bounds how long one call waits for a rate limit to lift: past
	// that the release fails with the rate-limit error instead of hanging.
	maxWait time.Duration
	tries   int
	// orgs caches whether an owner is an organisation (see isOrg).
	orgs map[string]bool
}

type options struct {
	baseURL string
	token   string
	maxWait time.Duration
	tries   int
	// base is what the shared retrying transport sends through (tests).
	base http.RoundTripper
}

// Option configures New.
type Option func(*options) error

// WithBaseURL points the client at a GitHub API other than api.github.com
// (GitHub Enterprise Server, or GITHUB_API_URL under Actions).
func WithBaseURL(u string) Option {
	return func(o *options) error {
		if _, err := url.Parse(u); err != nil {
			return fmt.Errorf("GitHub API URL %q: %w", u, err)
		}
		o.baseURL = u
		return nil
	}
}

// WithToken authenticates every call with a token (GITHUB_TOKEN).
func WithToken(token string) Option {
	return func(o *options) error { o.token = token; return nil }
}

// WithMaxRateLimitWait bounds how long a call waits out a rate limit.
func WithMaxRateLimitWait(d time.Duration) Option {
	return func(o *options) error { o.maxWait = d; return nil }
}

// withBaseTransport sends the client's requests through rt, under the
// shared retrying transport: tests serve the API in-process.
func withBaseTransport(rt http.RoundTripper) Option {
	return func(o *options) error { o.base = rt; return nil }
}

// New returns a client for the repository "owner/name". The repository may
// be empty for calls that name their owner themselves (package pruning).
func New(repository string, opts ...Option) (*Client, error) {
	owner, repo, ok := strings.Cut(repository, "/")
	if repository != "" && (!ok || owner == "" || repo == "" || strings.Contains(repo, "/")) {
		return nil, fmt.Errorf("repository %q: want owner/name (GITHUB_REPOSITORY)", repository)
	}
	o := options{maxWait: 5 * time.Minute, tries: 4}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	var topts []transport.Option
	if o.base != nil {
		topts = append(topts, transport.WithBase(o.base))
	}
	api := github.NewClient(&http.Client{Transport: transport.New(topts...)})
	if o.token != "" {
		api = api.WithAuthToken(o.token)
	}
	if o.baseURL != "" {
		base := o.baseURL
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		u, err := url.Parse(base)
		if err != nil {
			return nil, fmt.Errorf("GitHub API URL %q: %w", o.baseURL, err)
		}
		api.BaseURL = u
	}
	return &Client{api: api, owner: owner, repo: repo, maxWait: o.maxWait, tries: o.tries}, nil
}

// Repository is "owner/name".
func (c *Client) Repository() string { return c.owner + "/" + c.repo }

// needRepository fails calls that act on the repository when none was given.
func (c *Client) needRepository(what string) error {
	if c.owner == "" {
		return fmt.Errorf("%s: no repository (set GITHUB_REPOSITORY or --repository owner/name)", what)
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
		if !limited || try >= c.tries || wait > c.maxWait {
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

func wrap(what string, resp *github.Response, err error) error {
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w (%v)", what, ErrNotFound, err)
	}
	if resp != nil && resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s: %w (does the token have the permission this needs?)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
