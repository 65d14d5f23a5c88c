package pipeline

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
)

// randomIndex pushes an index of one random linux/amd64 image, and
// returns its digest and the image's.
func randomIndex(t *testing.T, repo name.Repository) (index, image v1.Hash) {
	t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(repo.Digest(d.String()), idx); err != nil {
		t.Fatal(err)
	}
	child, _ := img.Digest()
	return d, child
}

// TestCompareWithLatest: a run compares what it published with what latest
// named before it, and a comparison that cannot be made is a note on the
// agent, never a failure of its release.
func TestCompareWithLatest(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	prefix, err := publish.ParsePrefix(host+"/agent-images", true)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := prefix.Repository("pi")
	if err != nil {
		t.Fatal(err)
	}
	threshold := 0.1
	r := &run{o: Options{SizeThreshold: &threshold}, mode: modeMerge, prefixes: []publish.Prefix{prefix}, events: func(Event) {},
		dests: []publish.Publisher{publish.NewRegistry(prefix, transport.NewRegistry())}, client: transport.NewRegistry()}
	published, image := randomIndex(t, repo)
	tagLatest := func(d v1.Hash) {
		t.Helper()
		desc, err := remote.Get(repo.Digest(d.String()))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Tag(repo.Tag("latest"), desc); err != nil {
			t.Fatal(err)
		}
	}
	newAgent := func() *agent {
		// What the run published is taken as it has it: the size is
		// not read again.
		img := &record.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Digest: image, Size: 1234}
		return &agent{Agent: &record.Agent{Agent: "pi", Index: published, Status: record.StageDone, Platforms: []*record.Image{img}}}
	}

	// A first release: nothing to compare with, nothing to note.
	a := newAgent()
	if err := r.readPublished(ctx, a); err != nil {
		t.Fatal(err)
	}
	r.compare(ctx, a)
	if a.Changes != nil || len(a.Notes) > 0 {
		t.Errorf("first release: changes %+v, notes %q; want neither", a.Changes, a.Notes)
	}

	previous, _ := randomIndex(t, repo)
	tagLatest(previous)
	a = newAgent()
	if err := r.readPublished(ctx, a); err != nil {
		t.Fatal(err)
	}
	r.compare(ctx, a)
	if a.Changes == nil || a.Changes.From.Digest != previous.String() || a.Changes.To.Digest != published.String() ||
		a.Changes.From.Tag != "latest" || a.Changes.SizeThreshold == nil || *a.Changes.SizeThreshold != threshold || len(a.Notes) > 0 ||
		len(a.Changes.Platforms) != 1 || a.Changes.Platforms[0].To.Size != 1234 {
		t.Errorf("changes = %+v, notes %q; want from latest (%s) to %s, with the threshold", a.Changes, a.Notes, previous, published)
	}

	// latest already names what this run published (a re-run).
	tagLatest(published)
	a = newAgent()
	if err := r.readPublished(ctx, a); err != nil {
		t.Fatal(err)
	}
	r.compare(ctx, a)
	if a.Changes != nil || len(a.Notes) > 0 {
		t.Errorf("re-run: changes %+v, notes %q; want neither", a.Changes, a.Notes)
	}

	// latest names an index whose image the registry lost.
	broken, lost := randomIndex(t, repo)
	tagLatest(broken)
	if err := remote.Delete(repo.Digest(lost.String())); err != nil {
		t.Fatal(err)
	}
	a = newAgent()
	if err := r.readPublished(ctx, a); err != nil {
		t.Fatal(err)
	}
	r.compare(ctx, a)
	if a.Changes != nil || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "what changed since latest") || a.Status != record.StageDone {
		t.Errorf("broken latest: changes %+v, notes %q, status %s; want one note and the release done", a.Changes, a.Notes, a.Status)
	}

	// The registry cannot be read at all.
	srv.Close()
	a = newAgent()
	if err := r.readPublished(ctx, a); err != nil {
		t.Fatal(err)
	}
	r.compare(ctx, a)
	if a.Changes != nil || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "what changed is not reported") {
		t.Errorf("registry gone: changes %+v, notes %q; want one note", a.Changes, a.Notes)
	}
}
