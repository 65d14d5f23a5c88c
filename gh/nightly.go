package gh

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/nothingnesses/agent-images/record"
)

// NightlyLabel marks the one issue that tracks a failing nightly release.
const NightlyLabel = "nightly-failure"

// NightlyTitle is that issue's title.
const NightlyTitle = "Nightly release is failing"

// Run is the outcome of one release workflow run.
type Run struct {
	ID  int64
	URL string
	// Failed names the agents whose build or merge failed; FailedJobs the
	// other jobs (the matrix, say) that failed, which fail every agent.
	Failed     []string
	FailedJobs []string
	// Missing describes each agent the flake lists that llm-agents no longer
	// provides on a system ("forge on aarch64-linux: ..."): nothing was
	// built for it, so no job failed, yet the nightly did not release it.
	Missing []string
	// Changes are what changed in the agents the run released, from their
	// release.json: the issue says what moved while others failed, and the
	// comment that closes it what the run that fixed it released.
	Changes []*record.Changes
}

// OK reports whether nothing failed and nothing is missing.
func (r Run) OK() bool { return len(r.Failed) == 0 && len(r.FailedJobs) == 0 && len(r.Missing) == 0 }

// RunOutcome reads which jobs of a workflow run failed. Build and merge jobs
// are named "build <agent> <system>" and "merge <agent>" by release.yml, so
// the agent is the job name's second word. Jobs still running (the caller
// itself) do not count.
func (c *Client) RunOutcome(ctx context.Context, runID int64, runURL string) (Run, error) {
	if err := c.needRepository("reading run results"); err != nil {
		return Run{}, err
	}
	run := Run{ID: runID, URL: runURL}
	agents := map[string]bool{}
	opts := &github.ListWorkflowJobsOptions{Filter: "latest", ListOptions: github.ListOptions{PerPage: 100}}
	for {
		var jobs *github.Jobs
		var resp *github.Response
		err := c.call(ctx, fmt.Sprintf("listing the jobs of run %d", runID), func() (*github.Response, error) {
			var err error
			jobs, resp, err = c.api.Actions.ListWorkflowJobs(ctx, c.owner, c.repo, runID, opts)
			return resp, err
		})
		if err != nil {
			return Run{}, err
		}
		for _, j := range jobs.Jobs {
			switch j.GetConclusion() {
			case "failure", "timed_out", "cancelled", "startup_failure":
			default:
				continue
			}
			fields := strings.Fields(j.GetName())
			if len(fields) >= 2 && (fields[0] == "build" || fields[0] == "merge") {
				agents[fields[1]] = true
			} else {
				run.FailedJobs = append(run.FailedJobs, j.GetName())
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	for a := range agents {
		run.Failed = append(run.Failed, a)
	}
	sort.Strings(run.Failed)
	sort.Strings(run.FailedJobs)
	return run, nil
}

// Tracked says what TrackNightly did.
type Tracked struct {
	Issue  int
	Action string // "opened", "commented", "closed" or "none"
}

// TrackNightly keeps one issue open while nightly releases fail: it opens it
// on the first failure, comments on it on each later failure, and closes it
// with a comment on the first success.
func (c *Client) TrackNightly(ctx context.Context, run Run) (Tracked, error) {
	if err := c.needRepository("tracking the nightly"); err != nil {
		return Tracked{}, err
	}
	open, err := c.openTrackingIssue(ctx)
	if err != nil {
		return Tracked{}, err
	}
	switch {
	case run.OK() && open == nil:
		return Tracked{Action: "none"}, nil
	case run.OK():
		n := open.GetNumber()
		msg := fmt.Sprintf("The nightly release succeeded again: %s\n\nClosing.", run.URL)
		msg = withChanges(msg, run.Changes)
		if err := c.comment(ctx, n, msg); err != nil {
			return Tracked{}, err
		}
		err := c.call(ctx, fmt.Sprintf("closing issue #%d", n), func() (*github.Response, error) {
			_, resp, err := c.api.Issues.Edit(ctx, c.owner, c.repo, n, &github.IssueRequest{
				State: github.String("closed"), StateReason: github.String("completed"),
			})
			return resp, err
		})
		return Tracked{Issue: n, Action: "closed"}, err
	case open == nil:
		var created *github.Issue
		err := c.call(ctx, "opening the nightly tracking issue", func() (*github.Response, error) {
			var resp *github.Response
			var err error
			created, resp, err = c.api.Issues.Create(ctx, c.owner, c.repo, &github.IssueRequest{
				Title:  github.String(NightlyTitle),
				Body:   github.String(failureText(run, true)),
				Labels: &[]string{NightlyLabel},
			})
			return resp, err
		})
		if err != nil {
			return Tracked{}, err
		}
		return Tracked{Issue: created.GetNumber(), Action: "opened"}, nil
	default:
		n := open.GetNumber()
		return Tracked{Issue: n, Action: "commented"}, c.comment(ctx, n, failureText(run, false))
	}
}

func failureText(run Run, first bool) string {
	var b strings.Builder
	if first {
		b.WriteString("The nightly release failed. This issue stays open, with a comment per failing night, until a nightly succeeds.\n\n")
	} else {
		b.WriteString("The nightly release failed again.\n\n")
	}
	fmt.Fprintf(&b, "Run: %s\n\n", run.URL)
	if len(run.Failed) > 0 {
		b.WriteString("Failed agents:\n")
		for _, a := range run.Failed {
			fmt.Fprintf(&b, "- `%s`\n", a)
		}
	}
	if len(run.FailedJobs) > 0 {
		b.WriteString("\nFailed jobs (every agent is affected):\n")
		for _, j := range run.FailedJobs {
			fmt.Fprintf(&b, "- %s\n", j)
		}
	}
	if len(run.Missing) > 0 {
		b.WriteString("\nAgents listed in lib/agents.nix that llm-agents no longer provides (not released; the others were):\n")
		for _, m := range run.Missing {
			fmt.Fprintf(&b, "- %s\n", m)
		}
	}
	return withChanges(b.String(), run.Changes)
}

// maxIssueBody is the most an issue or a comment may hold.
const maxIssueBody = 65536

// withChanges appends what changed to an issue's or a comment's text,
// within what GitHub accepts.
func withChanges(text string, reports []*record.Changes) string {
	section := ChangesSectionWithin(reports, maxIssueBody-len(text)-2)
	if section == "" {
		return text
	}
	return text + "\n\n" + section
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
	opts := &github.IssueListByRepoOptions{
		State: "open", Labels: []string{NightlyLabel}, Sort: "created", Direction: "asc",
		ListOptions: github.ListOptions{PerPage: 100},
	}
	for {
		var issues []*github.Issue
		var resp *github.Response
		err := c.call(ctx, "listing open nightly issues", func() (*github.Response, error) {
			var err error
			issues, resp, err = c.api.Issues.ListByRepo(ctx, c.owner, c.repo, opts)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, is := range issues {
			if !is.IsPullRequest() {
				return is, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}
