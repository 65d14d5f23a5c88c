package gh

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
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
)

// ghcr is an in-process registry plus the package versions GHCR's API
// would list for what was pushed to it.
type ghcr struct {
	t     *testing.T
	repo  name.Repository
	gh    *fakeGitHub
	names map[string]string // digest -> what the test calls it
}

func newGHCR(t *testing.T, ownerType string) *ghcr {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(reg.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(reg.URL, "http://")+"/acme/agent-images/pi", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	g := &ghcr{t: t, repo: repo, gh: newFakeGitHub(t), names: map[string]string{}}
	g.gh.ownerType["acme"] = ownerType
	g.gh.versions["acme/agent-images/pi"] = nil
	// GHCR deletes the manifest and its tags with the version.
	g.gh.onDelete = func(_ string, v Version) {
		for _, tag := range v.Tags {
			if err := remote.Delete(repo.Tag(tag)); err != nil {
				t.Errorf("deleting tag %s from the registry: %v", tag, err)
			}
		}
		if err := remote.Delete(repo.Digest(v.Digest)); err != nil {
			t.Errorf("deleting %s from the registry: %v", v.Digest, err)
		}
	}
	return g
}

func (g *ghcr) image(label, arch string) v1.Image {
	img, err := random.Image(256, 1)
	if err != nil {
		g.t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{Architecture: arch, OS: "linux"})
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

// push writes the manifest by digest and adds the package version GHCR
// shows for it (untagged until tag is called).
func (g *ghcr) push(label string, x remote.Taggable) {
	d := digestOf(g.t, x.(interface{ Digest() (v1.Hash, error) }))
	ref := g.repo.Digest(d)
	var err error
	switch v := x.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, v)
	case v1.Image:
		err = remote.Write(ref, v)
	}
	if err != nil {
		g.t.Fatalf("pushing %s: %v", label, err)
	}
	g.names[d] = label
	g.gh.nextID++
	g.gh.versions["acme/agent-images/pi"] = append(g.gh.versions["acme/agent-images/pi"], Version{ID: g.gh.nextID, Digest: d})
}

func (g *ghcr) tag(x interface{ Digest() (v1.Hash, error) }, tags ...string) {
	d := digestOf(g.t, x)
	desc, err := remote.Get(g.repo.Digest(d))
	if err != nil {
		g.t.Fatal(err)
	}
	for _, tag := range tags {
		if err := remote.Tag(g.repo.Tag(tag), desc); err != nil {
			g.t.Fatal(err)
		}
	}
	vs := g.gh.versions["acme/agent-images/pi"]
	for i := range vs {
		if vs[i].Digest == d {
			vs[i].Tags = append(vs[i].Tags, tags...)
		}
	}
}

// signature makes a cosign-style tag-based attachment of subject.
func (g *ghcr) attach(label string, subject interface{ Digest() (v1.Hash, error) }, suffix string) v1.Image {
	img := g.image(label, "unknown")
	g.tag(img, "sha256-"+strings.TrimPrefix(digestOf(g.t, subject), "sha256:")+suffix)
	return img
}

func (g *ghcr) labels(vs []Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, g.names[v.Digest])
	}
	sort.Strings(out)
	return out
}

func TestPrune(t *testing.T) {
	for _, ownerType := range []string{"Organization", "User"} {
		t.Run(ownerType, func(t *testing.T) {
			g := newGHCR(t, ownerType)
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
			g.push("referrer of index tonight", ref.(v1.Image))

			amd2 := g.image("amd64 last night", "amd64")
			lastNight := g.index("index last night", amd2, arm)
			g.tag(lastNight, "2026-11-26")

			old1, old2 := g.image("amd64 old", "amd64"), g.image("arm64 old", "arm64")
			old := g.index("index old", old1, old2)
			g.tag(old, "2026-11-25")
			g.attach("sig of index old", old, ".sig")
			g.attach("att of amd64 old", old1, ".att")
			// A per-arch push of a run that failed before its index.
			g.image("orphan", "amd64")
			// The split workflow's staging reference keeps a per-arch image.
			staged := g.image("staged arm64", "arm64")
			g.tag(staged, "staging-aarch64-linux")

			c := g.gh.client(t)
			pkg, err := PackageFor(g.repo)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			plan, err := c.PlanPrune(ctx, pkg, 2)
			if err != nil {
				t.Fatalf("PlanPrune = %v", err)
			}
			wantDelete := []string{"amd64 old", "arm64 old", "att of amd64 old", "index old", "orphan", "sig of index old"}
			if got := g.labels(plan.Delete); !reflect.DeepEqual(got, wantDelete) {
				t.Errorf("PlanPrune delete = %q, want %q", got, wantDelete)
			}
			if !reflect.DeepEqual(plan.ExpiredTags, []string{"2026-11-25"}) {
				t.Errorf("PlanPrune expired = %q, want [2026-11-25]", plan.ExpiredTags)
			}
			if n := len(g.gh.callsMatching("DELETE ")); n != 0 {
				t.Fatalf("planning made %d DELETE calls, want none", n)
			}
			kind := map[string]string{"Organization": "orgs", "User": "users"}[ownerType]
			if lists := g.gh.callsMatching("GET /" + kind + "/acme/packages/container/agent-images%2Fpi/versions"); len(lists) < 2 {
				t.Errorf("version list calls = %q, want several pages on the %s path with the name escaped", lists, kind)
			}

			deleted, err := c.Prune(ctx, plan)
			if err != nil || deleted != len(wantDelete) {
				t.Fatalf("Prune = %d, %v, want %d deleted", deleted, err, len(wantDelete))
			}
			assertTagsComplete(t, g.repo)

			// Pruning again finds nothing to delete.
			again, err := c.PlanPrune(ctx, pkg, 2)
			if err != nil || len(again.Delete) != 0 {
				t.Errorf("second PlanPrune = %q, %v, want nothing to delete", g.labels(again.Delete), err)
			}
		})
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

func TestPlanPruneStopsOnUnreadableManifest(t *testing.T) {
	g := newGHCR(t, "Organization")
	img := g.image("tagged", "amd64")
	g.tag(img, "latest")
	g.image("orphan", "amd64")
	// The registry lost a tagged manifest: the walk cannot know its
	// children, so nothing may be deleted.
	if err := remote.Delete(g.repo.Digest(digestOf(t, img))); err != nil {
		t.Fatal(err)
	}
	pkg, _ := PackageFor(g.repo)
	_, err := g.gh.client(t).PlanPrune(context.Background(), pkg, 3)
	if err == nil || !strings.Contains(err.Error(), "pruning stops rather than guess") {
		t.Errorf("PlanPrune(missing tagged manifest) = %v, want an error", err)
	}
}

func TestPruneGoesOnPastRefusals(t *testing.T) {
	g := newGHCR(t, "Organization")
	g.image("gone already", "amd64")
	g.image("popular", "amd64")
	g.image("plain", "amd64")
	pkg, _ := PackageFor(g.repo)
	c := g.gh.client(t)
	plan, err := c.PlanPrune(context.Background(), pkg, 1)
	if err != nil {
		t.Fatal(err)
	}
	route := "DELETE /orgs/{owner}/packages/container/{name}/versions/{id}"
	g.gh.faults[route] = []func(http.ResponseWriter){
		notFound,
		func(w http.ResponseWriter) {
			writeJSON(w, 400, map[string]any{"message": "Publicly visible package versions with more than 5000 downloads cannot be deleted."})
		},
		secondaryRateLimit,
	}
	deleted, err := c.Prune(context.Background(), plan)
	if deleted != 2 || err == nil || !strings.Contains(err.Error(), "5000 downloads") {
		t.Errorf("Prune = %d, %v, want 2 deleted (404 counts) and the refusal reported", deleted, err)
	}
}

func TestPlanPruneRejectsKeepingNothing(t *testing.T) {
	g := newGHCR(t, "Organization")
	pkg, _ := PackageFor(g.repo)
	if _, err := g.gh.client(t).PlanPrune(context.Background(), pkg, 0); err == nil {
		t.Errorf("PlanPrune(keep 0) = nil, want an error")
	}
}

func TestPackageNotFound(t *testing.T) {
	g := newGHCR(t, "Organization")
	repo, _ := name.NewRepository(g.repo.RegistryStr()+"/acme/agent-images/nope", name.Insecure)
	pkg, _ := PackageFor(repo)
	if _, err := g.gh.client(t).PackageVersions(context.Background(), pkg); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("PackageVersions(missing package) = %v, want not found", err)
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
