package gh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func jobs(entries ...[2]string) []map[string]any {
	var out []map[string]any
	for i, e := range entries {
		status := "completed"
		if e[1] == "" {
			status = "in_progress"
		}
		out = append(out, map[string]any{"id": i + 1, "run_id": 77, "name": e[0], "status": status, "conclusion": e[1]})
	}
	return out
}

func TestRunOutcomeReadsEveryPage(t *testing.T) {
	f := newFakeGitHub(t)
	f.jobs = jobs(
		[2]string{"matrix", "success"},
		[2]string{"build pi x86_64-linux", "success"},
		[2]string{"build pi aarch64-linux", "failure"},
		[2]string{"build codex x86_64-linux", "success"},
		[2]string{"build codex aarch64-linux", "success"},
		[2]string{"merge pi", "skipped"},
		[2]string{"merge codex", "timed_out"},
		[2]string{"summary", ""},
	)
	run, err := f.client(t).RunOutcome(context.Background(), 77, "https://github.com/acme/agent-images/actions/runs/77")
	if err != nil {
		t.Fatalf("RunOutcome = %v", err)
	}
	if want := []string{"codex", "pi"}; !reflect.DeepEqual(run.Failed, want) || len(run.FailedJobs) != 0 {
		t.Errorf("RunOutcome = failed %q jobs %q, want %q and no other jobs", run.Failed, run.FailedJobs, want)
	}
	if pages := f.callsMatching("GET /repos/acme/agent-images/actions/runs/77/jobs"); len(pages) != 4 {
		t.Errorf("job list calls = %d, want 4 pages of 2", len(pages))
	}
}

func TestTrackNightly(t *testing.T) {
	f := newFakeGitHub(t)
	c := f.client(t)
	ctx := context.Background()
	// A pull request with the label must not be mistaken for the issue.
	f.issues = append(f.issues, map[string]any{"number": 1, "title": "unrelated PR", "state": "open",
		"labels": []map[string]any{{"name": NightlyLabel}}, "pull_request": map[string]any{"url": "x"}})

	fail1 := Run{ID: 1, URL: "https://github.com/acme/agent-images/actions/runs/1", Failed: []string{"pi"}}
	got, err := c.TrackNightly(ctx, fail1)
	if err != nil || got.Action != "opened" || got.Issue != 2 {
		t.Fatalf("TrackNightly(first failure) = %+v, %v, want opened #2", got, err)
	}
	var created struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	_ = json.Unmarshal([]byte(f.bodyOf("POST /repos/acme/agent-images/issues")), &created)
	if created.Title != NightlyTitle || !reflect.DeepEqual(created.Labels, []string{NightlyLabel}) ||
		!strings.Contains(created.Body, "- `pi`") || !strings.Contains(created.Body, fail1.URL) {
		t.Errorf("created issue = %+v, want title, label, agent pi and the run URL", created)
	}

	fail2 := Run{ID: 2, URL: "https://github.com/acme/agent-images/actions/runs/2", Failed: []string{"codex", "pi"}, FailedJobs: []string{"matrix"},
		Changes: changeReports()[1:]}
	got, err = c.TrackNightly(ctx, fail2)
	if err != nil || got != (Tracked{Issue: 2, Action: "commented"}) {
		t.Fatalf("TrackNightly(second failure) = %+v, %v, want commented on #2", got, err)
	}
	if n := len(f.callsMatching("POST /repos/acme/agent-images/issues")); n != 2 {
		t.Errorf("issue POSTs = %d, want the create and one comment", n)
	}
	if cs := f.comments[2]; len(cs) != 1 || !strings.Contains(cs[0], fail2.URL) || !strings.Contains(cs[0], "- `codex`") || !strings.Contains(cs[0], "- matrix") ||
		!strings.Contains(cs[0], "### What changed since the last release") || !strings.Contains(cs[0], "#### codex 0.1.0") {
		t.Errorf("comments = %q, want one naming the run, codex and the matrix job, and what changed in the agents that released", cs)
	}

	// The run that fixes it says, as it closes the issue, what it released.
	ok := Run{ID: 3, URL: "https://github.com/acme/agent-images/actions/runs/3", Changes: changeReports()}
	got, err = c.TrackNightly(ctx, ok)
	if err != nil || got != (Tracked{Issue: 2, Action: "closed"}) {
		t.Fatalf("TrackNightly(success) = %+v, %v, want closed #2", got, err)
	}
	if f.issues[1]["state"] != "closed" || len(f.comments[2]) != 2 || !strings.Contains(f.comments[2][1], ok.URL) ||
		!strings.Contains(f.comments[2][1], "#### pi 0.70.6 → 0.71.0") {
		t.Errorf("issue #2 = %v with comments %q, want closed with a comment naming run 3 and what changed", f.issues[1]["state"], f.comments[2])
	}

	// A success with no issue open writes nothing: what changed is in the
	// run's step summary and release.json.
	calls := len(f.callsMatching("POST "))
	got, err = c.TrackNightly(ctx, ok)
	if err != nil || got.Action != "none" || len(f.callsMatching("POST ")) != calls {
		t.Errorf("TrackNightly(success, nothing open) = %+v, %v, and %d new POSTs; want none and nothing written", got, err, len(f.callsMatching("POST "))-calls)
	}

	// Thirty agents' changes still make a comment GitHub takes.
	fail4 := Run{ID: 4, URL: "u", Failed: []string{"pi"}, Changes: thirtyAgents()}
	if _, err := c.TrackNightly(ctx, fail4); err != nil {
		t.Fatal(err)
	}
	var opened struct{ Body string }
	creates := f.callsMatching("POST /repos/acme/agent-images/issues")
	_ = json.Unmarshal([]byte(f.bodyOf(creates[len(creates)-1])), &opened)
	if len(opened.Body) > maxIssueBody || !strings.Contains(opened.Body, "#### agent29") {
		t.Errorf("issue opened with %d bytes (GitHub takes %d), want every agent's headline within it", len(opened.Body), maxIssueBody)
	}
}

func TestTrackNightlyErrors(t *testing.T) {
	f := newFakeGitHub(t)
	f.issues = append(f.issues, map[string]any{"number": 1, "title": NightlyTitle, "state": "open",
		"labels": []map[string]any{{"name": NightlyLabel}}})
	// The issue vanished (deleted) between listing and commenting: a 404.
	f.faults["POST /repos/{owner}/{repo}/issues/{n}/comments"] = []func(http.ResponseWriter){notFound}
	_, err := f.client(t).TrackNightly(context.Background(), Run{URL: "u", Failed: []string{"pi"}})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "commenting on issue #1") {
		t.Errorf("TrackNightly(comment 404) = %v, want ErrNotFound naming issue #1", err)
	}

	// Listing is rate limited once and then answers.
	f.faults["GET /repos/{owner}/{repo}/issues"] = []func(http.ResponseWriter){secondaryRateLimit}
	got, err := f.client(t).TrackNightly(context.Background(), Run{URL: "u", Failed: []string{"pi"}})
	if err != nil || got.Action != "commented" {
		t.Errorf("TrackNightly(after a secondary rate limit) = %+v, %v, want commented", got, err)
	}
}

// primaryRateLimit is GitHub's answer once the hourly quota is spent: 403
// with X-RateLimit-Remaining 0 and the reset time.
func primaryRateLimit(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-RateLimit-Limit", "1000")
	w.Header().Set("X-RateLimit-Remaining", "0")
	w.Header().Set("X-RateLimit-Used", "1000")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprint(w, `{"message":"API rate limit exceeded for installation ID 1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`)
}

func TestRunOutcomeWaitsForRateLimitReset(t *testing.T) {
	f := newFakeGitHub(t)
	f.jobs = jobs([2]string{"build pi x86_64-linux", "failure"})
	f.faults["GET /repos/{owner}/{repo}/actions/runs/{run}/jobs"] = []func(http.ResponseWriter){primaryRateLimit}
	run, err := f.client(t).RunOutcome(context.Background(), 9, "u")
	if err != nil || !reflect.DeepEqual(run.Failed, []string{"pi"}) {
		t.Errorf("RunOutcome after a primary rate limit = %+v, %v, want pi failed", run, err)
	}

	// A reset further away than the client may wait is an error, at once.
	f.faults["GET /repos/{owner}/{repo}/actions/runs/{run}/jobs"] = []func(http.ResponseWriter){primaryRateLimit}
	c, err := New("acme/agent-images", WithBaseURL(f.srv.URL), WithToken(f.token), WithMaxRateLimitWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.RunOutcome(context.Background(), 9, "u")
	if err == nil || !strings.Contains(err.Error(), "rate limit") || time.Since(start) > 500*time.Millisecond {
		t.Errorf("RunOutcome(rate limited, short max wait) = %v after %v, want a rate limit error at once", err, time.Since(start))
	}
}

// An agent llm-agents stopped providing builds nothing, so no job fails;
// the nightly still is not a success, and the issue names the agent.
func TestTrackNightlyMissingAgents(t *testing.T) {
	f := newFakeGitHub(t)
	c := f.client(t)
	run := Run{ID: 5, URL: "https://github.com/acme/agent-images/actions/runs/5",
		Missing: []string{"forge on aarch64-linux: llm-agents' packages.aarch64-linux has no forgecode"}}
	if run.OK() {
		t.Fatalf("Run{Missing: ...}.OK() = true, want false")
	}
	got, err := c.TrackNightly(context.Background(), run)
	if err != nil || got.Action != "opened" {
		t.Fatalf("TrackNightly(missing agent) = %+v, %v, want opened", got, err)
	}
	var created struct {
		Body string `json:"body"`
	}
	_ = json.Unmarshal([]byte(f.bodyOf("POST /repos/acme/agent-images/issues")), &created)
	if !strings.Contains(created.Body, "no longer provides") || !strings.Contains(created.Body, "- forge on aarch64-linux: llm-agents' packages.aarch64-linux has no forgecode") {
		t.Errorf("issue body = %q, want the missing agent listed", created.Body)
	}
}
