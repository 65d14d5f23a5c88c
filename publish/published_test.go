package publish

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/tags"
	"github.com/nothingnesses/agent-images/testbed/regproxy"
)

// unbuilt is what a release knows of images before building them: the
// platform and the derivation its evaluation named, no image.
func unbuilt(imgs []*record.Image) []*record.Image {
	var out []*record.Image
	for _, img := range imgs {
		out = append(out, &record.Image{Agent: img.Agent, System: img.System, Platform: img.Platform, DrvPath: img.DrvPath})
	}
	return out
}

func writes(reqs []regproxy.Request) []string {
	var out []string
	for _, r := range reqs {
		if r.Write() {
			out = append(out, r.String())
		}
	}
	return out
}

// TestReuseAtANewCommit: a release whose derivations equal those of the
// published index reuses it. At a new commit on a new day nothing is
// written: no index, no image, and neither the date nor the sha- tag moves
// onto an index built at another commit; a tag asked for by name does.
func TestReuseAtANewCommit(t *testing.T) {
	ctx := context.Background()
	host, rec := startRegistry(t)
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	built := images(t)
	first, err := publishWith(ctx, r, Release{
		Agent: "pi", Images: built, Version: "1.0", Created: day1,
		Annotations: map[string]string{AnnotationRevision: "aaaaaaa"},
		Tags:        mustTags(t, tags.Policy{Version: "1.0", Commit: "aaaaaaa", Now: day1}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The next run reads what is published with a client of its own: this
	// one knows the blobs it pushed without asking.
	rec.Reset()
	r = NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	p, err := r.Published(ctx, "pi")
	if err != nil || p == nil {
		t.Fatalf("Published = %v, %v", p, err)
	}
	if p.Index != first.Index || p.Key.Version != "1.0" || !p.Key.Created.Equal(day1) || len(p.Images) != 2 {
		t.Fatalf("Published = %+v, want index %s of version 1.0 created %s with 2 images", p, first.Index, day1)
	}
	// One read of the tag, the index and each image, and a HEAD of each
	// blob the images name (the completeness check: the config and two
	// layers each), after one ping of the registry.
	if got := len(rec.Requests()); got != 1+1+1+2*(1+3) {
		t.Errorf("Published made %d requests, want 11: %v", got, rec.Requests())
	}
	now := unbuilt(built)
	if err := p.Matches(now); err != nil {
		t.Fatalf("Matches(same derivations) = %v", err)
	}
	for i, img := range now {
		pi, ok := p.Image(img.Platform)
		if !ok || pi.Digest != built[i].Digest || pi.Size != built[i].Size || pi.Ref.DigestStr() != built[i].Digest.String() {
			t.Errorf("Image(%s) = %+v %v, want %s %d", img.Platform, pi, ok, built[i].Digest, built[i].Size)
		}
	}

	day2 := day1.Add(24 * time.Hour)
	rec.Reset()
	hooked := false
	res, err := publishWith(ctx, r, Release{
		Agent: "pi", Images: now, Version: "1.0", Created: day2, Reuse: p,
		Annotations: map[string]string{AnnotationRevision: "bbbbbbb"},
		Tags:        mustTags(t, tags.Policy{Version: "1.0", Commit: "bbbbbbb", Now: day2, Extra: []string{"v2"}}),
	}, func(_ context.Context, res *Result) error { hooked = res.Index == first.Index; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !hooked || res.Index != first.Index || !res.Unchanged || !slices.Equal(res.Moved, []string{"v2"}) || !slices.Equal(res.Tags, []string{"latest", "1.0", "v2"}) {
		t.Errorf("reuse: hook %v, index %s unchanged %v moved %v tags %v; want the hook on %s, unchanged, only v2 moved", hooked, res.Index, res.Unchanged, res.Moved, res.Tags, first.Index)
	}
	if w := writes(rec.Requests()); len(w) != 1 {
		t.Errorf("reuse wrote %v, want only the v2 tag", w)
	}
	repo, _ := name.NewRepository(host + "/agent-images/pi")
	for _, tag := range []string{"2026-11-02", "sha-bbbbbbb"} {
		if _, err := remote.Head(repo.Tag(tag)); err == nil {
			t.Errorf("tag %s exists, want the date and sha- tags only on indexes built at them", tag)
		}
	}

	// Without a tag to move, reuse writes nothing at all.
	rec.Reset()
	if _, err := publishWith(ctx, r, Release{Agent: "pi", Images: now, Version: "1.0", Created: day2, Reuse: p,
		Tags: mustTags(t, tags.Policy{Version: "1.0", Commit: "ccccccc", Now: day2})}, nil); err != nil {
		t.Fatal(err)
	}
	if w := writes(rec.Requests()); len(w) != 0 {
		t.Errorf("second reuse wrote %v, want nothing", w)
	}
}

// TestPublishedMatches: any difference from what a release evaluates means
// building: another derivation, another set of platforms, a lost image.
func TestPublishedMatches(t *testing.T) {
	ctx := context.Background()
	l := NewLayout(filepath.Join(t.TempDir(), "oci"))
	built := images(t)
	if _, err := publishWith(ctx, l, Release{Agent: "pi", Images: built, Version: "1.0", Created: day1, Tags: tagged("latest")}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := l.Published(ctx, "pi")
	if err != nil || p == nil {
		t.Fatalf("Published = %v, %v", p, err)
	}
	if none, err := l.Published(ctx, "codex"); none != nil || err != nil {
		t.Errorf("Published(codex) = %v, %v, want nothing published", none, err)
	}
	changed := unbuilt(built)
	changed[1].DrvPath = "/nix/store/11111111111111111111111111111111-pi.drv"
	lost := *p
	lost.Images = slices.Clone(p.Images)
	lost.Images[0].Present = false
	tests := []struct {
		name string
		p    *Published
		imgs []*record.Image
		ok   bool
	}{
		{"same derivations", p, unbuilt(built), true},
		{"one derivation changed", p, changed, false},
		{"a platform fewer", p, unbuilt(built[:1]), false},
		{"an image lost", &lost, unbuilt(built), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Matches(tc.imgs)
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrChanged) {
				t.Errorf("Matches = %v, want ok %v", err, tc.ok)
			}
		})
	}
	// The layout reuses too: the tag moves to the same index.
	res, err := publishWith(ctx, l, Release{Agent: "pi", Images: unbuilt(built), Reuse: p, Tags: tagged("latest", "v2")}, nil)
	if err != nil || res.Index != p.Index || !slices.Equal(res.Moved, []string{"v2"}) {
		t.Errorf("layout reuse = %+v, %v; want v2 moved to %s", res, err, p.Index)
	}
}

func mustTags(t *testing.T, p tags.Policy) []tags.Tag {
	t.Helper()
	moving, err := p.Tags()
	if err != nil {
		t.Fatal(err)
	}
	return moving
}
