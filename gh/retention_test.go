package gh

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/publish"
)

func TestClassOf(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, tc := range []struct{ tag, want string }{
		{"latest", ClassLatest},
		{"0.70.6", ClassVersion},
		{"1.2.3", ClassVersion},
		{"1.2", ClassVersion},
		{"1", ClassVersion},
		{"v1.2.3", ClassVersion},
		{"nightly", ClassVersion}, // a --tag extra: kept, whatever it is
		{"2026-11-27", ClassDated},
		{"2026-13-45", ClassVersion}, // not a date
		{"sha-abc1234", ClassSHA},
		{"sha-" + strings.Repeat("0", 40), ClassSHA},
		{"sha-xyz", ClassVersion},
		{"staging-sha-abc1234-linux-amd64", ClassStaging},
		{"pr-12", ClassPreview},
		{"pr-x", ClassVersion},
		{"sha256-" + hex + ".sig", ClassAttached},
		{"sha256-" + hex + ".att", ClassAttached},
		{"sha256-" + hex, ClassAttached},
	} {
		if got := ClassOf(tc.tag); got != tc.want {
			t.Errorf("ClassOf(%q) = %s, want %s", tc.tag, got, tc.want)
		}
	}
}

// TestReleaseTagsAreClassified ties the policy to the tags a release
// actually moves, so renaming a tag cannot silently make it permanent or
// garbage.
func TestReleaseTagsAreClassified(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	classes := func(p publish.TagPolicy) map[string]string {
		t.Helper()
		tags, err := p.Tags()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, tag := range publish.Names(tags) {
			got[tag] = ClassOf(tag)
		}
		return got
	}
	got := classes(publish.TagPolicy{Version: "0.70.6", Commit: "abc1234def", Now: now, GitTag: "v1.2.3", Extra: []string{"nightly"}})
	want := map[string]string{"latest": ClassLatest, "0.70.6": ClassVersion, "2026-11-27": ClassDated,
		"sha-abc1234": ClassSHA, "v1.2.3": ClassVersion, "1.2.3": ClassVersion, "1.2": ClassVersion, "1": ClassVersion,
		"nightly": ClassVersion}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("classes of a v1.2.3 release's tags = %v, want %v", got, want)
	}
	// A pull request's preview is a preview, kept only for --pr-max-age.
	got = classes(publish.TagPolicy{Version: "0.70.6", Commit: "abc1234def", Now: now, Preview: 42})
	if want := map[string]string{"pr-42": ClassPreview}; !reflect.DeepEqual(got, want) {
		t.Errorf("classes of a preview's tags = %v, want %v", got, want)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		tag := publish.StagingTag("sha-abc1234", v1.Platform{OS: "linux", Architecture: arch})
		if c := ClassOf(tag); c != ClassStaging {
			t.Errorf("ClassOf(publish.StagingTag = %q) = %s, want %s", tag, c, ClassStaging)
		}
	}
}

func TestParseAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "14d", want: 14 * 24 * time.Hour},
		{in: "36h", want: 36 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "d", bad: true},
		{in: "1.5d", bad: true},
		{in: "two weeks", bad: true},
	} {
		got, err := ParseAge(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseAge(%q) = %s, %v, want %s (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
	if got := FormatAge(14 * 24 * time.Hour); got != "14d" {
		t.Errorf("FormatAge(14 days) = %q, want 14d", got)
	}
}

// TestREADMEShowsRetentionPolicy keeps the README's table the one the code
// applies.
func TestREADMEShowsRetentionPolicy(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := PolicyMarkdown(DefaultRetention(time.Now()))
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md lacks the retention policy table; put this under `release prune`:\n%s", want)
	}
}
