package gh

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v62/github"
)

// NightlyLabel marks the one issue that tracks a failing nightly release.
const NightlyLabel = "nightly-failure"

// NightlyTitle is that issue's title.
const NightlyTitle = "Nightly release is failing"

// Run is which jobs of one workflow run failed.
type Run struct {
	ID  int64
	URL string
	// Failed names the agents whose build or merge failed; FailedJobs the
	// other jobs (the matrix, say) that failed, which fail every agent.
	Failed     []string
	FailedJobs []string
}

// RunOutcome reads which jobs of a workflow run failed. Build and merge jobs
// are named "build <agent> <system>" and "merge <agent>" by release.yml, so
// the agent is the job name's second word. Jobs still running (the caller
// itself) do not count.
func (c *Client) RunOutcome(ctx context.Context, runID int64, runURL string) (Run, error) {
	if err := c.needRepository("reading run results"); err != nil {
		return Run{}, err
	}
	run := Run{ID: runID, URL: runURL}
	opts := &github.ListWorkflowJobsOptions{Filter: "latest"}
	err := c.pages(ctx, fmt.Sprintf("listing the jobs of run %d", runID), &opts.ListOptions, func() (*github.Response, error) {
		jobs, resp, err := c.api.Actions.ListWorkflowJobs(ctx, c.owner, c.repo, runID, opts)
		if err != nil {
			return resp, err
		}
		for _, j := range jobs.Jobs {
			if !slices.Contains([]string{"failure", "timed_out", "cancelled", "startup_failure"}, j.GetConclusion()) {
				continue
			}
			fields := strings.Fields(j.GetName())
			if len(fields) >= 2 && (fields[0] == "build" || fields[0] == "merge") {
				run.Failed = append(run.Failed, fields[1])
			} else {
				run.FailedJobs = append(run.FailedJobs, j.GetName())
			}
		}
		return resp, nil
	})
	if err != nil {
		return Run{}, err
	}
	slices.Sort(run.Failed)
	run.Failed = slices.Compact(run.Failed)
	slices.Sort(run.FailedJobs)
	return run, nil
}

// Nightly is one nightly run as its tracking issue tells it.
type Nightly struct {
	// Failed is whether the run failed (or left agents unreleased).
	Failed bool
	// Opening is the issue's body when this failure opens it, Again the
	// comment on the issue already open, Fixed the comment that closes it.
	Opening, Again, Fixed string
}

// Tracked says what TrackNightly did.
type Tracked struct {
	Issue  int
	Action string // "opened", "commented", "closed" or "none"
}

// TrackNightly keeps one issue open while nightly releases fail: it opens it
// on the first failure, comments on it on each later failure, and closes it
// with a comment on the first success.
func (c *Client) TrackNightly(ctx context.Context, n Nightly) (Tracked, error) {
	if err := c.needRepository("tracking the nightly"); err != nil {
		return Tracked{}, err
	}
	open, err := c.openTrackingIssue(ctx)
	if err != nil {
		return Tracked{}, err
	}
	switch {
	case !n.Failed && open == nil:
		return Tracked{Action: "none"}, nil
	case !n.Failed:
		num := open.GetNumber()
		if err := c.comment(ctx, num, n.Fixed); err != nil {
			return Tracked{}, err
		}
		err := c.call(ctx, fmt.Sprintf("closing issue #%d", num), func() (*github.Response, error) {
			_, resp, err := c.api.Issues.Edit(ctx, c.owner, c.repo, num, &github.IssueRequest{
				State: github.String("closed"), StateReason: github.String("completed"),
			})
			return resp, err
		})
		return Tracked{Issue: num, Action: "closed"}, err
	case open == nil:
		var created *github.Issue
		err := c.call(ctx, "opening the nightly tracking issue", func() (resp *github.Response, err error) {
			created, resp, err = c.api.Issues.Create(ctx, c.owner, c.repo, &github.IssueRequest{
				Title: github.String(NightlyTitle), Body: github.String(n.Opening), Labels: &[]string{NightlyLabel},
			})
			return resp, err
		})
		if err != nil {
			return Tracked{}, err
		}
		return Tracked{Issue: created.GetNumber(), Action: "opened"}, nil
	default:
		num := open.GetNumber()
		return Tracked{Issue: num, Action: "commented"}, c.comment(ctx, num, n.Again)
	}
}

func (c *Client) comment(ctx context.Context, issue int, body string) error {
	return c.call(ctx, fmt.Sprintf("commenting on issue #%d", issue), func() (*github.Response, error) {
		_, resp, err := c.api.Issues.CreateComment(ctx, c.owner, c.repo, issue, &github.IssueComment{Body: github.String(body)})
		return resp, err
	})
}

// openTrackingIssue finds the open issue with the nightly label (pull
// requests share the issues list and are skipped); the oldest wins if a
// person opened a second one.
func (c *Client) openTrackingIssue(ctx context.Context) (*github.Issue, error) {
	opts := &github.IssueListByRepoOptions{State: "open", Labels: []string{NightlyLabel}, Sort: "created", Direction: "asc"}
	var open []*github.Issue
	err := c.pages(ctx, "listing open nightly issues", &opts.ListOptions, func() (*github.Response, error) {
		issues, resp, err := c.api.Issues.ListByRepo(ctx, c.owner, c.repo, opts)
		for _, is := range issues {
			if !is.IsPullRequest() {
				open = append(open, is)
			}
		}
		return resp, err
	})
	if err != nil || len(open) == 0 {
		return nil, err
	}
	return open[0], nil
}
