package gh

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// notes are release notes as render writes them; what they say is
// render's to test.
const notes = "| Agent | Index digest | Tags | Verify |\n|---|---|---|---|\n| codex | `ghcr.io/acme/agent-images/codex@sha256:ccc` | `latest` | `release verify --agent codex` |\n"

func TestPublishReleaseCreatesThenUpdates(t *testing.T) {
	f := newFakeGitHub(t)
	c := f.client(t)
	ctx := context.Background()

	rel, err := c.PublishRelease(ctx, "v1.2.0", notes)
	if err != nil {
		t.Fatalf("PublishRelease(new tag) = %v", err)
	}
	if got, want := f.callsMatching(""), []string{
		"GET /repos/acme/agent-images/releases/tags/v1.2.0",
		"POST /repos/acme/agent-images/releases",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	var body struct {
		TagName string `json:"tag_name"`
		Name    string `json:"name"`
		Body    string `json:"body"`
	}
	if err := json.Unmarshal([]byte(f.bodyOf("POST /repos/acme/agent-images/releases")), &body); err != nil {
		t.Fatal(err)
	}
	if body.TagName != "v1.2.0" || body.Name != "v1.2.0" || body.Body != notes {
		t.Errorf("created release tag/name/body = %q/%q/%q, want v1.2.0 with the notes", body.TagName, body.Name, body.Body)
	}
	if rel.GetID() == 0 {
		t.Errorf("PublishRelease returned no release id")
	}

	// A re-run of the same tag edits the release in place.
	again := "| pi | `ghcr.io/acme/agent-images/pi@sha256:aaa` |\n"
	if _, err := c.PublishRelease(ctx, "v1.2.0", again); err != nil {
		t.Fatalf("PublishRelease(existing tag) = %v", err)
	}
	edits := f.callsMatching("PATCH ")
	if len(edits) != 1 || edits[0] != "PATCH /repos/acme/agent-images/releases/"+jsonNumber(rel.GetID()) {
		t.Fatalf("edit calls = %q, want one PATCH of release %d", edits, rel.GetID())
	}
	var patch map[string]any
	_ = json.Unmarshal([]byte(f.bodyOf(edits[0])), &patch)
	if b, _ := patch["body"].(string); b != again {
		t.Errorf("edited body = %q, want %q", b, again)
	}
	if _, ok := patch["tag_name"]; ok {
		t.Errorf("edit sent tag_name %v, want only the body changed", patch["tag_name"])
	}
	if n := len(f.callsMatching("POST ")); n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
}

func TestPublishReleaseWaitsOutSecondaryRateLimit(t *testing.T) {
	f := newFakeGitHub(t)
	f.faults["POST /repos/{owner}/{repo}/releases"] = []func(w http.ResponseWriter){secondaryRateLimit}
	if _, err := f.client(t).PublishRelease(context.Background(), "v1.0.0", notes); err != nil {
		t.Fatalf("PublishRelease after a 403 secondary rate limit = %v, want success after waiting", err)
	}
	if got := f.callsMatching("POST "); len(got) != 2 {
		t.Errorf("create calls = %q, want the 403 then the retry", got)
	}
	if _, ok := f.releases["v1.0.0"]; !ok {
		t.Errorf("release v1.0.0 was not created")
	}
}

func TestPublishReleaseBadToken(t *testing.T) {
	f := newFakeGitHub(t)
	c, err := New("acme/agent-images", WithBaseURL(f.srv.URL), WithToken("wrong"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PublishRelease(context.Background(), "v1.0.0", notes)
	if err == nil || !strings.Contains(err.Error(), "Bad credentials") {
		t.Errorf("PublishRelease with a bad token = %v, want Bad credentials", err)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// A client made without a repository says so for calls that need one,
// before any request.
func TestNoRepository(t *testing.T) {
	f := newFakeGitHub(t)
	c, err := New("", WithBaseURL(f.srv.URL), WithToken(f.token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishRelease(context.Background(), "v1.0.0", notes); !errors.Is(err, ErrNoRepository) {
		t.Errorf("PublishRelease without a repository = %v, want ErrNoRepository", err)
	}
	if _, err := c.TrackNightly(context.Background(), Nightly{Failed: true}); !errors.Is(err, ErrNoRepository) {
		t.Errorf("TrackNightly without a repository = %v, want ErrNoRepository", err)
	}
	if n := len(f.callsMatching("")); n != 0 {
		t.Errorf("%d API calls, want none", n)
	}
	if _, err := New("acme"); err == nil || !strings.Contains(err.Error(), "want owner/name") {
		t.Errorf("New(acme) = %v, want owner/name asked for", err)
	}
}
