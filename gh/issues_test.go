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

// nightly is a run's texts as render writes them, each naming itself and
// the run, so the test sees which one TrackNightly wrote where.
func nightly(failed bool, run string) Nightly {
	return Nightly{Failed: failed, Opening: "opening: " + run, Again: "again: " + run, Fixed: "fixed: " + run}
}

func TestTrackNightly(t *testing.T) {
	f := newFakeGitHub(t)
	c := f.client(t)
	ctx := context.Background()
	// A pull request with the label must not be mistaken for the issue.
	f.issues = append(f.issues, map[string]any{"number": 1, "title": "unrelated PR", "state": "open",
		"labels": []map[string]any{{"name": NightlyLabel}}, "pull_request": map[string]any{"url": "x"}})

	got, err := c.TrackNightly(ctx, nightly(true, "run 1"))
	if err != nil || got.Action != "opened" || got.Issue != 2 {
		t.Fatalf("TrackNightly(first failure) = %+v, %v, want opened #2", got, err)
	}
	var created struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	_ = json.Unmarshal([]byte(f.bodyOf("POST /repos/acme/agent-images/issues")), &created)
	if created.Title != NightlyTitle || !reflect.DeepEqual(created.Labels, []string{NightlyLabel}) || created.Body != "opening: run 1" {
		t.Errorf("created issue = %+v, want the title, the label and the opening text", created)
	}

	got, err = c.TrackNightly(ctx, nightly(true, "run 2"))
	if err != nil || got != (Tracked{Issue: 2, Action: "commented"}) {
		t.Fatalf("TrackNightly(second failure) = %+v, %v, want commented on #2", got, err)
	}
	if n := len(f.callsMatching("POST /repos/acme/agent-images/issues")); n != 2 {
		t.Errorf("issue POSTs = %d, want the create and one comment", n)
	}
	if cs := f.comments[2]; len(cs) != 1 || cs[0] != "again: run 2" {
		t.Errorf("comments = %q, want the text of a later failure", cs)
	}

	// The run that fixes it comments, and closes the issue.
	got, err = c.TrackNightly(ctx, nightly(false, "run 3"))
	if err != nil || got != (Tracked{Issue: 2, Action: "closed"}) {
		t.Fatalf("TrackNightly(success) = %+v, %v, want closed #2", got, err)
	}
	if f.issues[1]["state"] != "closed" || f.issues[1]["state_reason"] != "completed" || len(f.comments[2]) != 2 || f.comments[2][1] != "fixed: run 3" {
		t.Errorf("issue #2 = %v with comments %q, want closed as completed with the fixed text", f.issues[1], f.comments[2])
	}

	// A success with no issue open writes nothing.
	calls := len(f.callsMatching("POST "))
	got, err = c.TrackNightly(ctx, nightly(false, "run 4"))
	if err != nil || got.Action != "none" || len(f.callsMatching("POST ")) != calls || len(f.callsMatching("PATCH ")) != 1 {
		t.Errorf("TrackNightly(success, nothing open) = %+v, %v; want none and nothing written", got, err)
	}
}

func TestTrackNightlyErrors(t *testing.T) {
	f := newFakeGitHub(t)
	f.issues = append(f.issues, map[string]any{"number": 1, "title": NightlyTitle, "state": "open",
		"labels": []map[string]any{{"name": NightlyLabel}}})
	// The issue vanished (deleted) between listing and commenting: a 404.
	f.faults["POST /repos/{owner}/{repo}/issues/{n}/comments"] = []func(http.ResponseWriter){notFound}
	_, err := f.client(t).TrackNightly(context.Background(), nightly(true, "u"))
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "commenting on issue #1") {
		t.Errorf("TrackNightly(comment 404) = %v, want ErrNotFound naming issue #1", err)
	}

	// Listing is rate limited once and then answers.
	f.faults["GET /repos/{owner}/{repo}/issues"] = []func(http.ResponseWriter){secondaryRateLimit}
	got, err := f.client(t).TrackNightly(context.Background(), nightly(true, "u"))
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
	defer func(d time.Duration) { maxRateLimitWait = d }(maxRateLimitWait)
	maxRateLimitWait = 10 * time.Millisecond
	start := time.Now()
	_, err = f.client(t).RunOutcome(context.Background(), 9, "u")
	if err == nil || !strings.Contains(err.Error(), "rate limit") || time.Since(start) > 500*time.Millisecond {
		t.Errorf("RunOutcome(rate limited, short max wait) = %v after %v, want a rate limit error at once", err, time.Since(start))
	}
}
