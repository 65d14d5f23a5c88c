package tags

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var day1 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestTags(t *testing.T) {
	now := time.Date(2026, 11, 27, 23, 30, 0, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name    string
		policy  Policy
		want    string
		wantErr string
	}{
		{name: "all", policy: Policy{Version: "1.2.3", Commit: "0123456789abcdef", Now: now, Extra: []string{"nightly"}}, want: "latest 1.2.3 2026-11-27 sha-0123456 nightly"},
		{name: "no commit", policy: Policy{Version: "0.0.1777525425-gadc8b1", Now: now}, want: "latest 0.0.1777525425-gadc8b1 2026-11-27"},
		{name: "plus in version", policy: Policy{Version: "1.0+build.5", Now: now}, want: "latest 1.0-build.5 2026-11-27"},
		{name: "duplicate extra", policy: Policy{Version: "1.0", Now: now, Extra: []string{"latest", "1.0"}}, want: "latest 1.0 2026-11-27"},
		{name: "bad extra", policy: Policy{Now: now, Extra: []string{"-x"}}, wantErr: `Extra "-x" is not a valid tag`},
		{name: "space in extra", policy: Policy{Now: now, Extra: []string{"bad tag"}}, wantErr: `Extra "bad tag" is not a valid tag`},
		{name: "cosign space", policy: Policy{Now: now, Extra: []string{"sha256-" + strings.Repeat("a", 64) + ".sig"}}, wantErr: "reserved tag space sha256-*"},
		{name: "staging space", policy: Policy{Now: now, Extra: []string{"staging-sha-0123456-linux-amd64"}}, wantErr: "reserved tag space staging-*"},
		{name: "bad commit", policy: Policy{Now: now, Commit: "a b c d e f g"}, wantErr: `commit: "a b c d e f g" is not a git commit id`},
		{name: "version in reserved space", policy: Policy{Now: now, Version: "staging-1"}, wantErr: `version "staging-1" gives no usable tag`},
		// Git tags: the tag itself, and a semantic version's series.
		{name: "semver git tag", policy: Policy{Version: "0.70.6", Commit: "0123456789abcdef", Now: now, GitTag: "v1.2.3"},
			want: "latest 0.70.6 2026-11-27 sha-0123456 v1.2.3 1.2.3 1.2 1"},
		{name: "git tag without v", policy: Policy{Version: "0.70.6", Now: now, GitTag: "2.0.0"}, want: "latest 0.70.6 2026-11-27 2.0.0 2.0 2"},
		{name: "0.x has no major series", policy: Policy{Version: "0.70.6", Now: now, GitTag: "v0.4.1"}, want: "latest 0.70.6 2026-11-27 v0.4.1 0.4.1 0.4"},
		{name: "pre-release: itself only, latest stays", policy: Policy{Version: "0.70.6", Now: now, GitTag: "v1.3.0-rc.1"},
			want: "0.70.6 2026-11-27 v1.3.0-rc.1 1.3.0-rc.1"},
		{name: "build metadata", policy: Policy{Version: "0.70.6", Now: now, GitTag: "v1.2.3+build.5"},
			want: "latest 0.70.6 2026-11-27 v1.2.3-build.5 1.2.3-build.5 1.2 1"},
		{name: "not a semantic version", policy: Policy{Version: "0.70.6", Now: now, GitTag: "v1.2"}, want: "latest 0.70.6 2026-11-27 v1.2"},
		{name: "leading zero is not semver", policy: Policy{Version: "0.70.6", Now: now, GitTag: "v01.2.3"}, want: "latest 0.70.6 2026-11-27 v01.2.3"},
		{name: "git tag with a slash", policy: Policy{Now: now, GitTag: "release/7"}, want: "latest 2026-11-27 release-7"},
		{name: "series equal to the agent's version", policy: Policy{Version: "1.2", Now: now, GitTag: "v1.2.0"},
			want: "latest 1.2 2026-11-27 v1.2.0 1.2.0 1"},
		{name: "git tag in a reserved space", policy: Policy{Now: now, GitTag: "staging-x"}, wantErr: `GitTag "staging-x" gives no usable tag`},
		// Pull request previews move pr-<N> alone.
		{name: "preview", policy: Policy{Version: "0.70.6", Commit: "0123456789abcdef", Now: now, Preview: 42}, want: "pr-42"},
		{name: "preview with a git tag", policy: Policy{Now: now, Preview: 42, GitTag: "v1.0.0"}, wantErr: "Preview 42 moves only pr-42"},
		{name: "preview with extra tags", policy: Policy{Now: now, Preview: 42, Extra: []string{"latest"}}, wantErr: "drop the git tag and the extra tags"},
		{name: "negative preview", policy: Policy{Now: now, Preview: -1}, wantErr: "Preview -1: want the pull request's number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.policy.Tags()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Tags() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || strings.Join(Names(got), " ") != tc.want {
				t.Errorf("Tags() = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestTagsOwned(t *testing.T) {
	got, err := Policy{Version: "1.0", Commit: "0123456789abcdef", Now: day1, Extra: []string{"v1", "latest", "2026-11-01"}}.Tags()
	if err != nil {
		t.Fatal(err)
	}
	// An extra tag that is also the date is asked for by name: it goes on
	// a reused index too.
	want := []Tag{{"latest", false, false}, {"1.0", false, false}, {"2026-11-01", false, false}, {"sha-0123456", true, true}, {"v1", true, false}}
	if !slices.Equal(got, want) {
		t.Errorf("Tags() = %v, want %v", got, want)
	}
}

// Which tags only ever move forward: the shared ones of every release and
// a semantic version's; the names of one release alone move anyway.
func TestTagsOwnedByGitTagAndPreview(t *testing.T) {
	got, err := Policy{Version: "0.70.6", Commit: "0123456789abcdef", Now: day1, GitTag: "v1.2.3"}.Tags()
	if err != nil {
		t.Fatal(err)
	}
	want := []Tag{{Name: "latest"}, {Name: "0.70.6"}, {Name: "2026-11-01", Built: true}, {Name: "sha-0123456", Owned: true, Built: true},
		{Name: "v1.2.3", Owned: true}, {Name: "1.2.3"}, {Name: "1.2"}, {Name: "1"}}
	if !slices.Equal(got, want) {
		t.Errorf("Tags() of v1.2.3 = %v, want %v", got, want)
	}
	got, err = Policy{Version: "0.70.6", Now: day1, Preview: 7}.Tags()
	if want := []Tag{{Name: "pr-7", Owned: true}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Tags() of preview 7 = %v, %v; want %v", got, err, want)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.0.1", -1},
		{"2.3a", "2.3.1", -1},
		{"2.3", "2.3a", -1},
		{"1.10", "1.9", 1},
		{"1.0pre1", "1.0", -1},
		{"0.70.6", "0.125.0", -1},
		{"2.0-rc1", "2.0-rc2", -1},
		{"0.0.1777525425-gadc8b1", "0.0.1777525426-g000000", -1},
		{"007", "7", 0},
		{"", "1", -1},
	}
	for _, tc := range tests {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestOf(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		tag  string
		want Class
	}{
		{"latest", Latest},
		{"0.70.6", Version},
		{"1.2.3", Version},
		{"1.2", Version},
		{"1", Version},
		{"v1.2.3", Version},
		{"nightly", Version}, // a --tag extra: kept, whatever it is
		{"2026-11-27", Dated},
		{"2026-13-45", Version}, // not a date
		{"sha-abc1234", SHA},
		{"sha-" + strings.Repeat("0", 40), SHA},
		{"sha-xyz", Version},
		{"staging-sha-abc1234-linux-amd64", Staging},
		{"staging-", Version},
		{"pr-12", Preview},
		{"pr-x", Version},
		{"pr-", Version},
		{"sha256-" + hex + ".sig", Attached},
		{"sha256-" + hex + ".att", Attached},
		{"sha256-" + hex, Attached},
	} {
		if got := Of(tc.tag); got != tc.want {
			t.Errorf("Of(%q) = %s, want %s", tc.tag, got, tc.want)
		}
	}
	if got, ok := AttachedTo("sha256-" + hex + ".sig"); !ok || got != "sha256:"+hex {
		t.Errorf("AttachedTo(.sig tag) = %q, %v, want sha256:%s", got, ok, hex)
	}
	if _, ok := AttachedTo("latest"); ok {
		t.Errorf("AttachedTo(latest) is attached, want not")
	}
}

// TestReleaseTagsAreClassified ties the classes prune keeps by to the tags a
// release actually moves, so renaming a tag cannot silently make it
// permanent or garbage.
func TestReleaseTagsAreClassified(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	classes := func(p Policy) map[string]Class {
		t.Helper()
		tags, err := p.Tags()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Class{}
		for _, tag := range Names(tags) {
			got[tag] = Of(tag)
		}
		return got
	}
	got := classes(Policy{Version: "0.70.6", Commit: "abc1234def", Now: now, GitTag: "v1.2.3", Extra: []string{"nightly"}})
	want := map[string]Class{"latest": Latest, "0.70.6": Version, "2026-11-27": Dated,
		"sha-abc1234": SHA, "v1.2.3": Version, "1.2.3": Version, "1.2": Version, "1": Version,
		"nightly": Version}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("classes of a v1.2.3 release's tags = %v, want %v", got, want)
	}
	// A pull request's preview is a preview, kept only for --pr-max-age.
	got = classes(Policy{Version: "0.70.6", Commit: "abc1234def", Now: now, Preview: 42})
	if want := map[string]Class{"pr-42": Preview}; !reflect.DeepEqual(got, want) {
		t.Errorf("classes of a preview's tags = %v, want %v", got, want)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		tag := StagingTag("sha-abc1234", v1.Platform{OS: "linux", Architecture: arch})
		if c := Of(tag); c != Staging {
			t.Errorf("Of(StagingTag = %q) = %s, want %s", tag, c, Staging)
		}
		if err := Validate(tag); err == nil {
			t.Errorf("Validate(StagingTag = %q) = nil, want the reserved space refused as a release tag", tag)
		}
	}
}

// TestKeyNewer: the source commit's time orders releases first, then the
// version; an index without a time is older than any with one.
func TestKeyNewer(t *testing.T) {
	later := day1.Add(time.Hour)
	tests := []struct {
		name string
		a, b Key
		want bool
	}{
		{"later commit", Key{Created: later, Version: "1.0"}, Key{Created: day1, Version: "2.0"}, true},
		{"earlier commit", Key{Created: day1, Version: "2.0"}, Key{Created: later, Version: "1.0"}, false},
		{"same time, higher version", Key{Created: day1, Version: "1.10"}, Key{Created: day1, Version: "1.9"}, true},
		{"same key", Key{Created: day1, Version: "1.0"}, Key{Created: day1, Version: "1.0"}, false},
		{"no time is oldest", Key{Version: "9.0"}, Key{Created: day1, Version: "1.0"}, false},
		{"a time beats none", Key{Created: day1, Version: "1.0"}, Key{Version: "9.0"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Newer(tc.b); got != tc.want {
				t.Errorf("%+v.Newer(%+v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"1.2.3":                  "1.2.3",
		"1.0+build/x":            "1.0-build-x",
		".hidden":                "_hidden",
		"-x":                     "_x",
		"+x":                     "_x",
		"é1":                     "_1",
		"a é":                    "a--",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		if got := Safe(in); got != want {
			t.Errorf("Safe(%q) = %q, want %q", in, got, want)
		}
	}
}
