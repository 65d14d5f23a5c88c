package gh

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/record"
)

var published = []Published{
	{Agent: "codex", Repository: "ghcr.io/acme/agent-images/codex", Digest: "sha256:" + strings.Repeat("c", 64),
		Tags: []string{"latest", "0.1.0", "v1.2.0"}},
	{Agent: "pi", Repository: "ghcr.io/acme/agent-images/pi", Digest: "sha256:" + strings.Repeat("a", 64),
		Tags: []string{"latest", "0.70.6", "v1.2.0"}, Verify: "cosign verify ghcr.io/acme/agent-images/pi@sha256:aaa"},
}

func TestPublishReleaseCreatesThenUpdates(t *testing.T) {
	f := newFakeGitHub(t)
	c := f.client(t)
	ctx := context.Background()

	rel, err := c.PublishRelease(ctx, "v1.2.0", published)
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
	if body.TagName != "v1.2.0" || body.Name != "v1.2.0" {
		t.Errorf("created release tag/name = %q/%q, want v1.2.0", body.TagName, body.Name)
	}
	for _, want := range []string{
		"| Agent | Index digest | Tags | Verify |",
		"| pi | `ghcr.io/acme/agent-images/pi@sha256:" + strings.Repeat("a", 64) + "` | `latest` `0.70.6` `v1.2.0` | `cosign verify ghcr.io/acme/agent-images/pi@sha256:aaa` |",
		"| codex | `ghcr.io/acme/agent-images/codex@sha256:" + strings.Repeat("c", 64) + "` | `latest` `0.1.0` `v1.2.0` | `release verify --agent codex` |",
	} {
		if !strings.Contains(body.Body, want) {
			t.Errorf("release body lacks %q:\n%s", want, body.Body)
		}
	}
	if rel.GetID() == 0 {
		t.Errorf("PublishRelease returned no release id")
	}

	// A re-run of the same tag edits the release in place.
	again := []Published{published[1]}
	if _, err := c.PublishRelease(ctx, "v1.2.0", again); err != nil {
		t.Fatalf("PublishRelease(existing tag) = %v", err)
	}
	edits := f.callsMatching("PATCH ")
	if len(edits) != 1 || edits[0] != "PATCH /repos/acme/agent-images/releases/"+jsonNumber(rel.GetID()) {
		t.Fatalf("edit calls = %q, want one PATCH of release %d", edits, rel.GetID())
	}
	var patch map[string]any
	_ = json.Unmarshal([]byte(f.bodyOf(edits[0])), &patch)
	if b, _ := patch["body"].(string); strings.Contains(b, "codex") || !strings.Contains(b, "| pi |") {
		t.Errorf("edited body = %q, want only pi", b)
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
	if _, err := f.client(t).PublishRelease(context.Background(), "v1.0.0", published); err != nil {
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
	_, err = c.PublishRelease(context.Background(), "v1.0.0", published)
	if err == nil || !strings.Contains(err.Error(), "Bad credentials") {
		t.Errorf("PublishRelease with a bad token = %v, want Bad credentials", err)
	}
}

func TestReadPublished(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	aa, bb, cc := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64), "sha256:"+strings.Repeat("c", 64)
	// What the pipeline writes, through the one type both sides share.
	pi := &record.Report{Registry: "r", Agents: []*record.Agent{{Agent: "pi", Version: "0.70.6", Repository: "r/pi",
		Index: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, Tags: []string{"latest"}, Unchanged: true, Status: record.StageDone}}}
	if err := pi.WriteFile(filepath.Join(dir, "release-pi.json")); err != nil {
		t.Fatal(err)
	}
	write("release-codex.json", `{"agents":[{"agent":"codex","repository":"r/codex","index":"`+cc+`","tags":["latest"],"signing":{"verifyCommand":"release verify --agent codex"}},
		{"agent":"claude-code","repository":"r/claude-code","status":"failed","error":"smoke: user is root"}]}`)
	got, err := ReadPublished(dir)
	if err != nil {
		t.Fatalf("ReadPublished(dir) = %v", err)
	}
	want := []Published{
		{Agent: "codex", Repository: "r/codex", Digest: cc, Tags: []string{"latest"}, Verify: "release verify --agent codex"},
		{Agent: "pi", Repository: "r/pi", Digest: aa, Tags: []string{"latest"}, Unchanged: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadPublished(dir) = %+v, want %+v", got, want)
	}

	// Two registries: complete in one, failed in the other. The agent is
	// published where it completed, and the summary and the release notes
	// say where it failed.
	dd := "sha256:" + strings.Repeat("d", 64)
	multi := &record.Report{Registries: []string{"r", "m"}, Agents: []*record.Agent{{Agent: "gemini", Repository: "r/gemini",
		Index: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("d", 64)}, Tags: []string{"latest"}, Status: record.StageFailed,
		Error: "m/gemini: pushing index: 503 Service Unavailable", Published: []*record.Publication{
			{Repository: "m/gemini", Status: record.StageFailed, Error: "pushing index: 503 Service Unavailable"},
			{Repository: "r/gemini", Status: record.StageDone, Signing: &record.Signing{VerifyCommand: "cosign verify r/gemini@" + dd}},
			{Repository: "q/gemini", Status: record.StageUnchanged},
		}}}}
	if err := multi.WriteFile(filepath.Join(dir, "release-gemini.json")); err != nil {
		t.Fatal(err)
	}
	got, err = ReadPublished(dir)
	if err != nil {
		t.Fatal(err)
	}
	gemini := Published{Agent: "gemini", Repository: "r/gemini", Mirrors: []string{"q/gemini"}, Digest: dd, Tags: []string{"latest"},
		Failed: []FailedIn{{Repository: "m/gemini", Error: "pushing index: 503 Service Unavailable"}}, Verify: "cosign verify r/gemini@" + dd}
	if len(got) != 3 || !reflect.DeepEqual(got[1], gemini) {
		t.Fatalf("ReadPublished(with gemini) = %+v, want %+v second", got, gemini)
	}
	wantCell := "`r/gemini@" + dd + "`<br>`q/gemini@" + dd + "`<br>`m/gemini`: **failed**: pushing index: 503 Service Unavailable"
	if s := Summary(got); !strings.Contains(s, "| gemini | "+wantCell+" |") {
		t.Errorf("Summary = %s, want gemini's row to list %s", s, wantCell)
	}
	if n := ReleaseNotes("v1", got); !strings.Contains(n, "| gemini | "+wantCell+" |") {
		t.Errorf("ReleaseNotes = %s, want gemini's row to list %s", n, wantCell)
	}

	write("dup.json", `{"agents":[{"agent":"pi","index":"`+bb+`"}]}`)
	if _, err := ReadPublished(dir); err == nil || !strings.Contains(err.Error(), "agent pi is in both") {
		t.Errorf("ReadPublished(duplicate agent) = %v, want an error naming pi", err)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
