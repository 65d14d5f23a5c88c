package retention_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/retention"
	"github.com/nothingnesses/agent-images/tags"
)

// ghcr is an in-process registry plus the package versions GHCR's API
// would list for what was pushed to it, with a clock for their times.
type ghcr struct {
	t     *testing.T
	repo  name.Repository
	names map[string]string // digest -> what the test calls it
	// versions are the package's versions as GHCR's API lists them.
	versions []gh.Version
	nextID   int64
	// requests counts the registry requests the code under test made, and
	// writes those of them that were not reads.
	requests, writes int
	// registry is the in-process registry's handler: the test pushes,
	// tags and deletes through it directly, without a socket, so that a
	// year of nightlies is set up in moments.
	registry http.Handler
	// direct has go-containerregistry's client do the same, for the
	// checks and for plans that read a year of manifests.
	direct remote.Option
	// manifests: digest -> raw manifest and media type, to tag it.
	manifests map[string]rawManifest
	// tagged: tag -> the digest it points at.
	tagged map[string]string
	// now is when the next push or tag happens.
	now time.Time
}

type rawManifest struct {
	body      []byte
	mediaType types.MediaType
}

// handlerTransport serves requests with an http.Handler in the same
// process, as if over a connection.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.RequestURI = r.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func newGHCR(t *testing.T) *ghcr {
	handler := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))
	g := &ghcr{t: t}
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests++
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			g.writes++
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(reg.URL, "http://")+"/acme/agent-images/pi", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	g.repo, g.names, g.registry, g.direct = repo, map[string]string{}, handler, remote.WithTransport(handlerTransport{handler})
	g.manifests, g.tagged, g.nextID = map[string]rawManifest{}, map[string]string{}, 100
	g.now = time.Date(2026, 11, 27, 3, 23, 0, 0, time.UTC)
	return g
}

// delete deletes a plan's versions the way GHCR does when gh deletes them
// through its API: the manifest and its tags go with the version. It
// returns how many it deleted.
func (g *ghcr) delete(plan *retention.Plan) int {
	for _, v := range plan.Deletions() {
		for _, ref := range append(slices.Clone(v.Tags), v.Digest) {
			if code := g.call(http.MethodDelete, "manifests/"+ref, "", nil); code != http.StatusAccepted {
				g.t.Errorf("deleting %s from the registry: HTTP %d", ref, code)
			}
		}
		g.versions = slices.DeleteFunc(g.versions, func(x gh.Version) bool { return x.ID == v.ID })
	}
	return len(plan.Delete)
}

// call makes one registry API call of the repository (path after
// /v2/<repo>/) and returns the status.
func (g *ghcr) call(method, path, contentType string, body []byte) int {
	req := httptest.NewRequest(method, "/v2/"+g.repo.RepositoryStr()+"/"+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	g.registry.ServeHTTP(rec, req)
	return rec.Code
}

// image pushes a small image of its own (a config naming label, no
// layers): what prune reads is manifests, never layers.
func (g *ghcr) image(label, arch string) v1.Image {
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: arch, OS: "linux",
		Config: v1.Config{Labels: map[string]string{"test": label}}})
	if err != nil {
		g.t.Fatal(err)
	}
	g.push(label, img)
	return img
}

func (g *ghcr) index(label string, imgs ...v1.Image) v1.ImageIndex {
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range imgs {
		cf, _ := img.ConfigFile()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: cf.Architecture}}})
	}
	g.push(label, idx)
	return idx
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// manifest is what push needs of an image or index.
type manifest interface {
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
	RawManifest() ([]byte, error)
}

// push writes the manifest by digest (an image's config blob first) and
// adds the package version GHCR shows for it, untagged until tag is
// called, created now.
func (g *ghcr) push(label string, x manifest) {
	d := digestOf(g.t, x)
	body, err := x.RawManifest()
	if err != nil {
		g.t.Fatal(err)
	}
	mt, err := x.MediaType()
	if err != nil {
		g.t.Fatal(err)
	}
	if img, ok := x.(v1.Image); ok {
		cfg, err := img.RawConfigFile()
		if err != nil {
			g.t.Fatal(err)
		}
		h, _, _ := v1.SHA256(bytes.NewReader(cfg))
		if code := g.call(http.MethodPost, "blobs/uploads/?digest="+h.String(), "", cfg); code != http.StatusCreated {
			g.t.Fatalf("pushing the config of %s: HTTP %d", label, code)
		}
	}
	if code := g.call(http.MethodPut, "manifests/"+d, string(mt), body); code != http.StatusCreated {
		g.t.Fatalf("pushing %s: HTTP %d", label, code)
	}
	g.manifests[d] = rawManifest{body, mt}
	g.names[d] = label
	g.nextID++
	g.versions = append(g.versions, gh.Version{ID: g.nextID, Digest: d, Created: g.now, Updated: g.now})
}

// tag points tags at x, moving each from the version that had it, as GHCR
// does, and marks x updated now.
func (g *ghcr) tag(x interface{ Digest() (v1.Hash, error) }, tags ...string) {
	d := digestOf(g.t, x)
	m := g.manifests[d]
	for _, tag := range tags {
		if code := g.call(http.MethodPut, "manifests/"+tag, string(m.mediaType), m.body); code != http.StatusCreated {
			g.t.Fatalf("tagging %s as %s: HTTP %d", g.names[d], tag, code)
		}
	}
	vs := g.versions
	at := func(digest string) *gh.Version {
		for i := len(vs) - 1; i >= 0; i-- {
			if vs[i].Digest == digest {
				return &vs[i]
			}
		}
		g.t.Fatalf("no package version %s", digest)
		return nil
	}
	for _, tag := range tags {
		if from, ok := g.tagged[tag]; ok && from != d {
			v := at(from)
			v.Tags = slices.DeleteFunc(v.Tags, func(t string) bool { return t == tag })
		}
		g.tagged[tag] = d
	}
	v := at(d)
	for _, tag := range tags {
		if !slices.Contains(v.Tags, tag) {
			v.Tags = append(v.Tags, tag)
		}
	}
	v.Updated = g.now
}

// attach makes a cosign-style tag-based attachment of subject.
func (g *ghcr) attach(label string, subject interface{ Digest() (v1.Hash, error) }, suffix string) v1.Image {
	img := g.image(label, "unknown")
	g.tag(img, "sha256-"+strings.TrimPrefix(digestOf(g.t, subject), "sha256:")+suffix)
	return img
}

func (g *ghcr) labels(ds []retention.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, g.names[d.Digest])
	}
	sort.Strings(out)
	return out
}

// tagCount is how many tags of one class are on kept and on deleted versions.
type tagCount struct{ Kept, Deleted int }

// countTags counts a plan's tags by class on the versions it keeps and
// deletes; an untagged version counts once, under Untagged.
func countTags(plan *retention.Plan) map[tags.Class]tagCount {
	out := map[tags.Class]tagCount{}
	for _, d := range append(slices.Clip(plan.Keep), plan.Delete...) {
		classes := []tags.Class{retention.Untagged}
		if len(d.Tags) > 0 {
			classes = classes[:0]
			for _, t := range d.Tags {
				classes = append(classes, tags.Of(t))
			}
		}
		for _, c := range classes {
			n := out[c]
			if d.Reason.Keep {
				n.Kept++
			} else {
				n.Deleted++
			}
			out[c] = n
		}
	}
	return out
}

func TestDecide(t *testing.T) {
	g := newGHCR(t)
	night := func(day int) { g.now = time.Date(2026, 11, day, 3, 23, 0, 0, time.UTC) }
	night(27)
	// Tonight: a new amd64 image; the arm64 image is unchanged and
	// shared with last night's index.
	amd1 := g.image("amd64 tonight", "amd64")
	arm := g.image("arm64 shared", "arm64")
	tonight := g.index("index tonight", amd1, arm)
	g.tag(tonight, "latest", "0.70.6", "2026-11-27", "sha-abc1234")
	g.attach("sig of index tonight", tonight, ".sig")
	g.attach("att of amd64 tonight", amd1, ".att")
	// An OCI 1.1 referrer about tonight's index: untagged, kept.
	base, _ := random.Image(64, 1)
	ref := mutate.Subject(base, v1.Descriptor{
		MediaType: types.OCIImageIndex, Digest: mustHash(t, digestOf(t, tonight)), Size: 1})
	g.push("referrer of index tonight", ref.(manifest))

	night(26)
	amd2 := g.image("amd64 last night", "amd64")
	lastNight := g.index("index last night", amd2, arm)
	g.tag(lastNight, "2026-11-26")

	night(25)
	old1, old2 := g.image("amd64 old", "amd64"), g.image("arm64 old", "arm64")
	old := g.index("index old", old1, old2)
	g.tag(old, "2026-11-25")
	g.attach("sig of index old", old, ".sig")
	g.attach("att of amd64 old", old1, ".att")
	// A per-arch push of a run that failed before its index.
	g.image("orphan", "amd64")
	// The split workflow's staging reference keeps a per-arch image
	// that no merge has listed yet, inside the window.
	night(27)
	staged := g.image("staged arm64", "arm64")
	g.tag(staged, "staging-aarch64-linux")

	ctx := context.Background()
	policy := retention.Policy{KeepDated: 2, PreviewMaxAge: time.Hour, StagingGrace: time.Hour,
		Now: time.Date(2026, 11, 28, 5, 0, 0, 0, time.UTC)}
	plan, err := retention.Decide(ctx, g.repo, g.versions, policy)
	if err != nil {
		t.Fatalf("Decide = %v", err)
	}
	wantDelete := []string{"amd64 old", "arm64 old", "att of amd64 old", "index old", "orphan", "sig of index old"}
	if got := g.labels(plan.Delete); !reflect.DeepEqual(got, wantDelete) {
		t.Errorf("Decide delete = %q, want %q", got, wantDelete)
	}
	if got, want := countTags(plan)[tags.Dated], (tagCount{Kept: 2, Deleted: 1}); got != want {
		t.Errorf("Decide dated tags = %+v, want %+v", got, want)
	}
	if got, want := countTags(plan)[tags.Staging], (tagCount{Kept: 1}); got != want {
		t.Errorf("Decide staging tags = %+v, want %+v (unmerged, inside the window)", got, want)
	}
	if g.writes != 0 {
		t.Fatalf("planning made %d registry writes, want none", g.writes)
	}
	g.delete(plan)
	assertTagsComplete(t, g.repo)

	// Pruning again finds nothing to delete.
	again, err := retention.Decide(ctx, g.repo, g.versions, policy)
	if err != nil || len(again.Delete) != 0 {
		t.Errorf("second Decide = %q, %v, want nothing to delete", g.labels(again.Delete), err)
	}
}

// assertTagsComplete walks every tag and checks that everything it reaches
// is still in the registry: prune never deletes a version a tag reaches.
func assertTagsComplete(t *testing.T, repo name.Repository) {
	t.Helper()
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		desc, err := remote.Get(repo.Tag(tag))
		if err != nil {
			t.Errorf("tag %s no longer resolves: %v", tag, err)
			continue
		}
		if desc.MediaType.IsIndex() {
			idx, _ := desc.ImageIndex()
			m, _ := idx.IndexManifest()
			for _, child := range m.Manifests {
				if _, err := remote.Get(repo.Digest(child.Digest.String())); err != nil {
					t.Errorf("tag %s: index child %s was deleted: %v", tag, child.Digest, err)
				}
			}
		}
	}
}

func TestDecideStopsOnUnreadableManifest(t *testing.T) {
	g := newGHCR(t)
	img := g.image("tagged", "amd64")
	g.tag(img, "latest")
	g.image("orphan", "amd64")
	// The registry lost a tagged manifest: the walk cannot know its
	// children, so nothing may be deleted.
	if err := remote.Delete(g.repo.Digest(digestOf(t, img))); err != nil {
		t.Fatal(err)
	}
	_, err := retention.Decide(context.Background(), g.repo, g.versions, retention.Default(g.now))
	if err == nil || !strings.Contains(err.Error(), "pruning stops rather than guess") {
		t.Errorf("Decide(missing tagged manifest) = %v, want an error", err)
	}
}

func TestDecideRejectsBadPolicy(t *testing.T) {
	g := newGHCR(t)
	g.image("orphan", "amd64")
	for _, policy := range []retention.Policy{
		{KeepDated: 0, PreviewMaxAge: time.Hour, StagingGrace: time.Hour, Now: g.now},
		{KeepDated: 1, PreviewMaxAge: 0, StagingGrace: time.Hour, Now: g.now},
		{KeepDated: 1, PreviewMaxAge: time.Hour, StagingGrace: 0, Now: g.now},
		{KeepDated: 1, PreviewMaxAge: time.Hour, StagingGrace: time.Hour},
	} {
		if _, err := retention.Decide(context.Background(), g.repo, g.versions, policy); err == nil {
			t.Errorf("Decide(%+v) = nil, want an error", policy)
		}
	}
	if g.requests != 0 {
		t.Errorf("Decide with a bad policy made %d registry requests, want none", g.requests)
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
		got, err := retention.ParseAge(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseAge(%q) = %s, %v, want %s (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
	if got := retention.FormatAge(14 * 24 * time.Hour); got != "14d" {
		t.Errorf("FormatAge(14 days) = %q, want 14d", got)
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDecideKeepsExtraTagsWhateverTheirShape: a --tag extra shaped like a
// date, sha-<commit> or pr-<N> was classed by its shape and deleted once
// out of the window; named as an extra, it is kept like a version.
func TestDecideKeepsExtraTagsWhateverTheirShape(t *testing.T) {
	g := newGHCR(t)
	g.now = time.Date(2020, 1, 1, 3, 0, 0, 0, time.UTC)
	pinned := g.image("pinned", "amd64")
	g.tag(pinned, "2020-01-01", "sha-0000000", "pr-1")
	g.now = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	current := g.image("current", "amd64")
	g.tag(current, "latest", "2026-11-27")
	extras := []string{"2020-01-01", "sha-0000000", "pr-1"}
	for _, tt := range []struct {
		extra []string
		keep  bool
	}{{nil, false}, {extras, true}, {extras[1:2], true}} {
		policy := retention.Default(g.now)
		policy.KeepDated = 1
		policy.Extra = tt.extra
		plan, err := retention.Decide(context.Background(), g.repo, g.versions, policy)
		if err != nil {
			t.Fatal(err)
		}
		kept := slices.ContainsFunc(plan.Keep, func(d retention.Decision) bool { return d.Version.Digest == digestOf(t, pinned) })
		if kept != tt.keep {
			t.Errorf("Extra %v: pinned kept = %v, want %v", tt.extra, kept, tt.keep)
		}
	}
}
