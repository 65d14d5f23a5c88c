package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nothingnesses/agent-images/render"
	"github.com/nothingnesses/agent-images/retention"
	"github.com/nothingnesses/agent-images/tags"
)

// TestPruneYearOfNightlies prunes a package the way a year of nightly
// releases leaves it on GHCR, and checks what goes, class by class, and
// that everything a kept tag reaches stays.
//
// Nights 0..364 run from 2025-11-29 to today, 2026-11-28; each builds
// amd64 and arm64 under staging tags, merges an index, signs the index and
// both images, attests both images, and tags latest, the agent version
// (0.<night/30>.0), the date and sha-<commit>. Besides:
//   - nights 45, 105, ..., 345 (n%60 == 45): arm64 fails, nothing merges;
//   - nights 10, 40, ..., 340 (n%30 == 10): nothing changed, the night
//     re-stages and re-tags the night before's images and index;
//   - nights 200 and 350 release twice, so the date moves to the second
//     index and the first keeps only its sha- tag;
//   - nights 101 and 301 are v1.0.0 and v1.1.0, tagged also 1.0.0, 1.0, 1
//     and 1.1.0, 1.1, 1 (1 moves to v1.1.0);
//   - previews pr-7 (20 days old), pr-9 (30 days), pr-8 (pushed 5 days ago,
//     then again 3 days ago); two orphans; an OCI 1.1 referrer of tonight's
//     index and one of night 50's.
//
// With --keep 30 the window is the 30 newest dates: nights 334..364 but
// 345 (failed), from 2026-10-29.
func TestPruneYearOfNightlies(t *testing.T) {
	g := newGHCR(t)
	first := time.Date(2025, 11, 29, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	stagingTag := func(key, arch string) string {
		return tags.StagingTag(key, v1.Platform{OS: "linux", Architecture: arch})
	}
	type release struct {
		index v1.ImageIndex
		parts []v1.Image
	}
	var prev release
	indexOf := map[int]v1.ImageIndex{}
	for n := 0; n < 365; n++ {
		day := first.AddDate(0, 0, n)
		date := day.Format(time.DateOnly)
		version := fmt.Sprintf("0.%d.0", n/30)
		runs := 1
		if n == 200 || n == 350 {
			runs = 2
		}
		for run := 0; run < runs; run++ {
			key := fmt.Sprintf("sha-%07x", 2*n+run)
			g.now = day.Add(3*time.Hour + 23*time.Minute + time.Duration(run)*8*time.Hour)
			label := fmt.Sprintf("night %d run %d", n, run)
			switch {
			case n%60 == 45:
				amd := g.image(label+" amd64", "amd64")
				g.tag(amd, stagingTag(key, "amd64"))
				continue
			case n%30 == 10:
				g.tag(prev.parts[0], stagingTag(key, "amd64"))
				g.tag(prev.parts[1], stagingTag(key, "arm64"))
				g.now = g.now.Add(20 * time.Minute)
				g.tag(prev.index, "latest", version, date, key)
				continue
			}
			amd, arm := g.image(label+" amd64", "amd64"), g.image(label+" arm64", "arm64")
			g.tag(amd, stagingTag(key, "amd64"))
			g.tag(arm, stagingTag(key, "arm64"))
			g.now = g.now.Add(20 * time.Minute)
			idx := g.index(label+" index", amd, arm)
			g.attach(label+" index .sig", idx, ".sig")
			for arch, img := range map[string]v1.Image{"amd64": amd, "arm64": arm} {
				g.attach(label+" "+arch+" .sig", img, ".sig")
				g.attach(label+" "+arch+" .att", img, ".att")
			}
			tags := []string{"latest", version, date, key}
			switch n {
			case 101:
				tags = append(tags, "v1.0.0", "1.0.0", "1.0", "1")
			case 301:
				tags = append(tags, "v1.1.0", "1.1.0", "1.1", "1")
			}
			g.tag(idx, tags...)
			prev = release{idx, []v1.Image{amd, arm}}
			indexOf[n] = idx
		}
	}
	preview := func(tag string, age time.Duration) {
		g.now = now.Add(-age)
		label := fmt.Sprintf("%s %s ago", tag, age)
		idx := g.index(label+" index", g.image(label+" amd64", "amd64"), g.image(label+" arm64", "arm64"))
		g.tag(idx, tag)
	}
	preview("pr-9", 30*24*time.Hour)
	preview("pr-7", 20*24*time.Hour)
	preview("pr-8", 5*24*time.Hour)
	preview("pr-8", 3*24*time.Hour)
	g.now = now.Add(-40 * 24 * time.Hour)
	g.image("orphan 40 days old", "amd64")
	g.now = now.Add(-2 * time.Hour)
	g.image("orphan 2 hours old", "amd64")
	for _, n := range []int{364, 50} {
		img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "unknown"})
		if err != nil {
			t.Fatal(err)
		}
		ref := mutate.Subject(img, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: mustHash(t, digestOf(t, indexOf[n])), Size: 1})
		g.push(fmt.Sprintf("referrer of night %d", n), ref.(manifest))
	}
	g.now = now
	total := len(g.versions)
	if total != 2814 {
		t.Fatalf("the package has %d versions, want 2814 (the scenario changed: recount)", total)
	}

	// What must survive, found by walking the registry from the tags the
	// policy promises to keep, before anything is deleted.
	var promised []string
	promised = append(promised, "latest", "1", "1.0", "1.0.0", "v1.0.0", "1.1", "1.1.0", "v1.1.0", "pr-8")
	for k := 0; k <= 12; k++ {
		promised = append(promised, fmt.Sprintf("0.%d.0", k))
	}
	for n := 334; n <= 364; n++ {
		if n != 345 {
			promised = append(promised, first.AddDate(0, 0, n).Format(time.DateOnly))
		}
	}
	promised = append(promised,
		fmt.Sprintf("sha-%07x", 2*350),                      // night 350's first index: inside the window
		stagingTag(fmt.Sprintf("sha-%07x", 2*345), "amd64"), // night 345's unmerged part: inside the window
	)
	before := map[string]map[string]bool{}
	for _, tag := range promised {
		before[tag] = reachable(t, g, tag)
	}

	ctx := context.Background()
	policy := retention.Default(now)
	start := time.Now()
	plan, err := retention.Decide(ctx, g.repo, g.versions, policy, g.direct)
	if err != nil {
		t.Fatalf("Decide = %v", err)
	}
	t.Logf("planned %d versions in %s", total, time.Since(start))
	if want := time.Date(2026, 10, 29, 0, 0, 0, 0, time.UTC); !plan.WindowStart.Equal(want) {
		t.Errorf("window starts %s, want %s (night 334)", plan.WindowStart, want)
	}

	// Tags by class, on the versions kept and deleted: 30 of 359 dates in
	// the window and 13 on older kept indexes; the sha- and staging tags of the 43
	// nightly indexes kept (30 in the window, 11 versions older than it, 2
	// releases), with the re-tags of unchanged night 340 and the extra run
	// of night 350; night 345's unmerged part; pr-8; the .sig/.att of the 43.
	wantTags := map[tags.Class]tagCount{
		tags.Latest:        {Kept: 1},
		tags.Version:       {Kept: 20},
		tags.Dated:         {Kept: 43, Deleted: 316},
		tags.SHA:           {Kept: 44, Deleted: 317},
		tags.Staging:       {Kept: 89, Deleted: 639},
		tags.Preview:       {Kept: 1, Deleted: 2},
		tags.Attached:      {Kept: 215, Deleted: 1530},
		retention.Untagged: {Kept: 3, Deleted: 10},
	}
	if got := countTags(plan); !reflect.DeepEqual(got, wantTags) {
		t.Errorf("Decide tags by class = %+v\nwant %+v", got, wantTags)
	}
	// Versions by reason: a version is attributed to the first class of
	// retention.Rules among its tags.
	type group struct {
		keep  bool
		class tags.Class
	}
	wantGroups := []struct {
		group
		n int
	}{
		{group{true, tags.Latest}, 1},         // tonight
		{group{true, tags.Version}, 14},       // 11 older versions, v1.0.0, v1.1.0, 0.11.0 in the window
		{group{true, tags.Dated}, 27},         // the rest of the window's dated indexes
		{group{true, tags.SHA}, 1},            // night 350's first index
		{group{true, tags.Staging}, 3},        // tonight's parts (under a day old), night 345's unmerged part
		{group{true, tags.Preview}, 1},        // pr-8
		{group{true, retention.Reached}, 302}, // 86 parts, 215 .sig/.att, tonight's referrer
		{group{false, tags.Dated}, 305},       // 347 dated indexes but the 42 kept
		{group{false, tags.SHA}, 1},           // night 200's first index
		{group{false, tags.Staging}, 617},     // parts of the 306 indexes that go, 5 unmerged parts before the window
		{group{false, tags.Preview}, 2},       // pr-7, pr-9
		{group{false, tags.Attached}, 1530},   // .sig/.att of the 306
		{group{false, retention.Untagged}, 7}, // parts of pr-7, pr-9 and the first pr-8; night 50's referrer
		{group{false, retention.Orphan}, 3},   // two orphans, the first pr-8 index
	}
	var got []string
	for _, gr := range plan.Groups() {
		got = append(got, fmt.Sprintf("%v %s %d", gr.Reason.Keep, gr.Reason.Class, len(gr.Versions)))
	}
	var want []string
	for _, w := range wantGroups {
		want = append(want, fmt.Sprintf("%v %s %d", w.keep, w.class, w.n))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan groups =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(plan.Keep) != 349 || len(plan.Delete) != 2465 {
		t.Errorf("plan keeps %d and deletes %d, want 349 and 2465", len(plan.Keep), len(plan.Delete))
	}
	// Indexes go before their children.
	seenImage := false
	for _, d := range plan.Delete {
		isIndex := strings.HasSuffix(g.names[d.Digest], " index")
		if isIndex && seenImage {
			t.Errorf("plan deletes index %s after an image: a prune cut short would leave it without children", g.names[d.Digest])
			break
		}
		seenImage = seenImage || !isIndex
	}

	// The dry run prints the policy and the plan, grouped by reason in
	// that order, every deleted version under its reason.
	var out bytes.Buffer
	if err := render.Policy(&out, policy); err != nil {
		t.Fatal(err)
	}
	render.Plan(&out, "pi", plan)
	printed := out.String()
	plain := func(s string) string { return strings.ReplaceAll(s, "`", "") }
	for _, r := range retention.Rules {
		if !regexp.MustCompile(`(?m)^` + string(r.Class) + ` +` + regexp.QuoteMeta(plain(r.Tags)) + ` +` + regexp.QuoteMeta(plain(r.Kept(policy))) + `$`).MatchString(printed) {
			t.Errorf("dry run lacks the policy row of %s:\n%s", r.Class, printed[:min(len(printed), 2000)])
		}
	}
	if !strings.Contains(printed, "pi: keep 349 versions, delete 2465; window from 2026-10-29\n") {
		t.Errorf("dry run lacks the summary line:\n%s", printed[:min(len(printed), 2000)])
	}
	header := regexp.MustCompile(`^  (keep|delete) (\d+), (\w+): `)
	var headers []string
	under := ""
	listed := map[string]int{}
	for _, line := range strings.Split(printed, "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			headers = append(headers, fmt.Sprintf("%v %s %s", m[1] == "keep", m[3], m[2]))
			under = m[1] + " " + m[3]
			continue
		}
		if strings.HasPrefix(line, "    ") {
			listed[under]++
		}
	}
	if !reflect.DeepEqual(headers, want) {
		t.Errorf("dry run groups =\n%s\nwant\n%s", strings.Join(headers, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range wantGroups {
		n := listed[map[bool]string{true: "keep", false: "delete"}[w.keep]+" "+string(w.class)]
		if want := map[bool]int{true: 0, false: w.n}[w.keep]; n != want {
			t.Errorf("dry run lists %d versions under %v %s, want %d", n, w.keep, w.class, want)
		}
	}
	oldest := fmt.Sprintf("(%s, sha-%07x)", first.Format(time.DateOnly), 0)
	if i, j := strings.Index(printed, "  delete 305, dated:"), strings.Index(printed, oldest); i < 0 || j < i {
		t.Errorf("dry run does not list night 0's index %s under the dated reason", oldest)
	}

	if deleted := g.delete(plan); deleted != 2465 {
		t.Fatalf("deleted %d, want 2465", deleted)
	}
	for _, tag := range promised {
		after := reachable(t, g, tag)
		if !reflect.DeepEqual(after, before[tag]) {
			var lost []string
			for d := range before[tag] {
				if !after[d] {
					lost = append(lost, g.names[d])
				}
			}
			t.Errorf("tag %s reaches %d manifests after the prune, %d before; lost %q", tag, len(after), len(before[tag]), lost)
		}
	}
	assertTagsComplete(t, g.repo)
	if left := len(g.versions); left != 349 {
		t.Errorf("%d versions left, want 349", left)
	}
	again, err := retention.Decide(ctx, g.repo, g.versions, policy, g.direct)
	if err != nil || len(again.Delete) != 0 {
		t.Errorf("second Decide deletes %d, %v, want nothing", len(again.Delete), err)
	}
}

// reachable walks the registry from a tag the way a pull and a verify do:
// the manifest, an index's children, and the .sig and .att tags of each.
func reachable(t *testing.T, g *ghcr, tag string) map[string]bool {
	t.Helper()
	desc, err := remote.Get(g.repo.Tag(tag), g.direct)
	if err != nil {
		t.Errorf("tag %s does not resolve: %v", tag, err)
		return nil
	}
	seen := map[string]bool{}
	queue := []string{desc.Digest.String()}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		desc, err := remote.Get(g.repo.Digest(d), g.direct)
		if err != nil {
			t.Errorf("tag %s: %s (%s) is missing: %v", tag, d, g.names[d], err)
			continue
		}
		seen[d] = true
		if desc.MediaType.IsIndex() {
			idx, _ := desc.ImageIndex()
			m, _ := idx.IndexManifest()
			for _, child := range m.Manifests {
				queue = append(queue, child.Digest.String())
			}
		}
		for _, suffix := range []string{".sig", ".att"} {
			if a, err := remote.Head(g.repo.Tag("sha256-"+strings.TrimPrefix(d, "sha256:")+suffix), g.direct); err == nil {
				queue = append(queue, a.Digest.String())
			}
		}
	}
	return seen
}
