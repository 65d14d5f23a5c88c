package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/internal/pullsize"
	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/tags"
	"github.com/nothingnesses/agent-images/testbed/regproxy"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

func startRegistry(t *testing.T) (string, *regproxy.Proxy) {
	t.Helper()
	rec := regproxy.New(registry.New(registry.Logger(nilLogger())))
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), rec
}

// images is a two-platform release's per-arch images, amd64 and arm64.
func images(t *testing.T) []*record.Image {
	t.Helper()
	var out []*record.Image
	for _, sys := range flake.Systems {
		img, err := random.Image(256, 2)
		if err != nil {
			t.Fatal(err)
		}
		p, err := sys.Platform()
		if err != nil {
			t.Fatal(err)
		}
		rec := &record.Image{Agent: "pi", System: string(sys), Platform: p}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = rec.Platform.OS, rec.Platform.Architecture
		rec.Image, _ = mutate.ConfigFile(img, cf)
		// The pipeline records digest and size once it has built the image.
		rec.Digest, _ = rec.Image.Digest()
		rec.Size, _ = pullsize.Of(rec.Image)
		rec.DrvPath = "/nix/store/00000000000000000000000000000000-pi-" + string(sys) + ".drv"
		out = append(out, rec)
	}
	return out
}

func prefix(t testing.TB, s string) Prefix {
	t.Helper()
	p, err := ParsePrefix(s, true)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tagged(names ...string) []tags.Tag {
	var out []tags.Tag
	for _, n := range names {
		out = append(out, tags.Tag{Name: n, Owned: strings.HasPrefix(n, "sha-")})
	}
	return out
}

var day1 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestRegistryPublish(t *testing.T) {
	ctx := context.Background()
	host, rec := startRegistry(t)
	repo, _ := name.NewRepository(host + "/agent-images/pi")
	rel := Release{
		Agent:   "pi",
		Images:  images(t),
		Version: "1.0",
		Created: day1,
		Tags:    tagged("latest", "1.0", "2026-11-27"),
	}
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	var hookSaw []string
	hook := func(ctx context.Context, res *Result) error {
		// Everything is in the registry and no tag exists yet.
		if _, err := remote.Head(res.Ref); err != nil {
			t.Errorf("index not pushed before hook: %v", err)
		}
		for _, img := range rel.Images {
			if _, err := remote.Head(res.Ref.Context().Digest(img.Digest.String())); err != nil {
				t.Errorf("%s not pushed before hook: %v", img.Platform, err)
			}
		}
		_, err := remote.Head(repo.Tag("latest"))
		hookSaw = append(hookSaw, res.Index.String())
		if err == nil && !res.Unchanged {
			t.Errorf("tag latest exists before hook on a first release")
		}
		return nil
	}
	res, err := publishWith(ctx, r, rel, hook)
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	if res.Unchanged || len(res.Moved) != 3 {
		t.Errorf("first Publish: Unchanged=%v Moved=%v, want false and all tags", res.Unchanged, res.Moved)
	}
	for _, tag := range res.Tags {
		desc, err := remote.Head(repo.Tag(tag))
		if err != nil || desc.Digest != res.Index {
			t.Errorf("tag %s = %v, %v; want %s", tag, desc, err, res.Index)
		}
	}
	idx, err := remote.Index(repo.Digest(res.Index.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Platform.Architecture != "amd64" || im.Manifests[1].Platform.Architecture != "arm64" {
		t.Errorf("index manifests = %+v, want amd64 then arm64", im.Manifests)
	}
	for i, m := range im.Manifests {
		if got := m.Annotations[AnnotationDerivation]; got != rel.Images[i].DrvPath {
			t.Errorf("index entry %s derivation = %q, want %q", m.Platform, got, rel.Images[i].DrvPath)
		}
		if rel.Images[i].Digest != m.Digest {
			t.Errorf("index entry %s = %s, want the image %s", m.Platform, m.Digest, rel.Images[i].Digest)
		}
	}
	if im.Annotations[AnnotationVersion] != "1.0" || im.Annotations[AnnotationCreated] != "2026-11-01T12:00:00Z" {
		t.Errorf("index annotations = %v, want version 1.0 created 2026-11-01T12:00:00Z", im.Annotations)
	}

	rec.Reset()
	again, err := publishWith(ctx, r, rel, hook)
	if err != nil {
		t.Fatalf("second Publish = %v", err)
	}
	if !again.Unchanged || len(again.Moved) != 0 || again.Index != res.Index {
		t.Errorf("second Publish: Unchanged=%v Moved=%v Index=%s, want unchanged, nothing moved, %s", again.Unchanged, again.Moved, again.Index, res.Index)
	}
	if w := rec.Writes(); len(w) != 0 {
		t.Errorf("second Publish wrote %v, want nothing", w)
	}
	if len(hookSaw) != 2 {
		t.Errorf("hook ran %d times, want 2", len(hookSaw))
	}
}

// TestRepairLostImage: a tag points at an index one of whose images the
// registry lost. Publishing the same release again must push it back, not
// report the release unchanged.
func TestRepairLostImage(t *testing.T) {
	ctx := context.Background()
	host, rec := startRegistry(t)
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	rel := Release{Agent: "pi", Images: images(t), Version: "1.0", Created: day1, Tags: tagged("latest")}
	if _, err := publishWith(ctx, r, rel, nil); err != nil {
		t.Fatal(err)
	}
	repo, err := prefix(t, host+"/agent-images").Repository("pi")
	if err != nil {
		t.Fatal(err)
	}
	lost := repo.Digest(rel.Images[1].Digest.String())
	if err := remote.Delete(lost); err != nil {
		t.Fatalf("deleting %s: %v", lost, err)
	}
	rec.Reset()
	res, err := publishWith(ctx, r, rel, nil)
	if err != nil {
		t.Fatalf("Publish after losing %s = %v", lost, err)
	}
	if res.Unchanged || len(res.Repaired) != 1 || res.Repaired[0] != "linux/arm64" {
		t.Errorf("Publish after a lost image: Unchanged=%v Repaired=%v, want changed and linux/arm64 repaired", res.Unchanged, res.Repaired)
	}
	if _, err := remote.Image(lost); err != nil {
		t.Errorf("%s is still missing: %v", lost, err)
	}
	if w := rec.Writes(); len(w) == 0 || !slices.ContainsFunc(w, func(s string) bool { return strings.HasSuffix(s, "/manifests/"+lost.DigestStr()) }) {
		t.Errorf("writes = %v, want the lost manifest pushed again", w)
	}
}

// TestNoRollback: shared tags never move to an older index; owned tags and
// a deliberate rollback do.
func TestNoRollback(t *testing.T) {
	ctx := context.Background()
	host, _ := startRegistry(t)
	repo, _ := name.NewRepository(host + "/agent-images/pi")
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	newer := Release{Agent: "pi", Images: images(t), Version: "2.0", Created: day1.Add(48 * time.Hour),
		Tags: tagged("latest", "2.0", "2026-11-27", "sha-bbbbbbb")}
	nres, err := publishWith(ctx, r, newer, nil)
	if err != nil {
		t.Fatal(err)
	}
	older := Release{Agent: "pi", Images: images(t), Version: "1.0", Created: day1,
		Tags: tagged("latest", "1.0", "2026-11-27", "sha-aaaaaaa")}
	plan, err := planned(ctx, r, older)
	if err != nil {
		t.Fatal(err)
	}
	ores, err := publishWith(ctx, r, older, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []*outcome{plan, ores} {
		if got := strings.Join(res.Moved, " "); got != "1.0 sha-aaaaaaa" {
			t.Errorf("older release moved %q, want only its version and sha- tags", got)
		}
		var kept []string
		for _, k := range res.Kept {
			kept = append(kept, k.Tag)
			if k.Index != nres.Index || k.Version != "2.0" || !k.Created.Equal(newer.Created) {
				t.Errorf("kept %+v, want at %s (2.0, %s)", k, nres.Index, newer.Created)
			}
		}
		if strings.Join(kept, " ") != "latest 2026-11-27" {
			t.Errorf("older release kept %v, want latest and the date", kept)
		}
	}
	for tag, want := range map[string]v1.Hash{"latest": nres.Index, "2026-11-27": nres.Index, "1.0": ores.Index, "sha-aaaaaaa": ores.Index} {
		if desc, err := remote.Head(repo.Tag(tag)); err != nil || desc.Digest != want {
			t.Errorf("%s = %v %v, want %s", tag, desc, err, want)
		}
	}

	// Same time, lower version: still older.
	sameTime := Release{Agent: "pi", Images: images(t), Version: "1.9", Created: newer.Created, Tags: tagged("latest")}
	if res, err := publishWith(ctx, r, sameTime, nil); err != nil || len(res.Moved) != 0 || len(res.Kept) != 1 {
		t.Errorf("same time, version 1.9 after 2.0: %+v %v, want latest kept", res, err)
	}

	older.AllowRollback = true
	res, err := publishWith(ctx, r, older, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Kept) != 0 || !slices.Contains(res.Moved, "latest") {
		t.Errorf("rollback allowed: moved %v kept %v, want latest moved", res.Moved, res.Kept)
	}
}

// TestSemverSeriesNeverMoveBack: a git tag's series tags follow the
// no-rollback rule. v1.2.4 from a newer commit takes 1.2 and 1 from v1.2.3;
// a re-run of v1.2.3 afterwards (an older commit) moves only the tags that
// name it alone, and 1.2.3, which it already holds.
func TestSemverSeriesNeverMoveBack(t *testing.T) {
	ctx := context.Background()
	host, _ := startRegistry(t)
	repo, _ := name.NewRepository(host + "/agent-images/pi")
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	release := func(git string, created time.Time, imgs []*record.Image) *outcome {
		t.Helper()
		moving, err := tags.Policy{Version: "0.70.6", Now: created, GitTag: git}.Tags()
		if err != nil {
			t.Fatal(err)
		}
		res, err := publishWith(ctx, r, Release{Agent: "pi", Images: imgs, Version: "0.70.6", Created: created, Tags: moving}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	imgs := images(t)
	first := release("v1.2.3", day1, imgs)
	second := release("v1.2.4", day1.Add(time.Hour), images(t))
	again := release("v1.2.3", day1, imgs)
	if got, want := strings.Join(again.Moved, " "), ""; got != want {
		t.Errorf("re-run of v1.2.3 moved %q, want %q", got, want)
	}
	var kept []string
	for _, k := range again.Kept {
		kept = append(kept, k.Tag)
	}
	if got, want := strings.Join(kept, " "), "latest 0.70.6 2026-11-01 1.2 1"; got != want {
		t.Errorf("re-run of v1.2.3 kept %q, want %q", got, want)
	}
	for tag, want := range map[string]v1.Hash{
		"1.2": second.Index, "1": second.Index, "latest": second.Index, "1.2.4": second.Index, "v1.2.4": second.Index,
		"1.2.3": first.Index, "v1.2.3": first.Index,
	} {
		if desc, err := remote.Head(repo.Tag(tag)); err != nil || desc.Digest != want {
			t.Errorf("%s = %v %v, want %s", tag, desc, err, want)
		}
	}
}

func TestPlanWritesNothing(t *testing.T) {
	ctx := context.Background()
	host, rec := startRegistry(t)
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	rel := Release{Agent: "pi", Images: images(t), Version: "1.0", Created: day1, Tags: tagged("latest", "1.0")}
	res, err := planned(ctx, r, rel)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unchanged || len(res.Moved) != 2 || res.Index.Hex == "" {
		t.Errorf("Plan = %+v, want a new index and both tags to move", res)
	}
	if w := rec.Writes(); len(w) != 0 {
		t.Errorf("Plan wrote %v", w)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if _, err := planned(ctx, NewLayout(dir), rel); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("planning into layout %s created it (%v)", dir, err)
	}
}

func TestHookFailureMovesNoTag(t *testing.T) {
	host, _ := startRegistry(t)
	repo, _ := name.NewRepository(host + "/agent-images/codex")
	rel := Release{Agent: "codex", Images: images(t), Tags: tagged("latest")}
	_, err := publishWith(context.Background(), NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry()), rel, func(context.Context, *Result) error {
		return errors.New("cannot sign")
	})
	if err == nil || !strings.Contains(err.Error(), "cannot sign") {
		t.Fatalf("Publish with failing hook = %v, want the hook's error", err)
	}
	if _, err := remote.Head(repo.Tag("latest")); err == nil {
		t.Errorf("tag latest exists after a failed hook")
	}
}

// watchedRegistry is Debian's docker-registry, which keeps blobs per
// repository as real ones do, behind a proxy that records every request.
func watchedRegistry(t *testing.T) (string, *regproxy.Proxy) {
	t.Helper()
	upstream, err := url.Parse("http://" + testenv.StartRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := regproxy.To(upstream)
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), rec
}

// assertMounted checks every layer of img reached repo b by a mount from a,
// none by an upload.
func assertMounted(t *testing.T, rec *regproxy.Proxy, img v1.Image, b, a string) {
	t.Helper()
	layers, _ := img.Layers()
	mounted := 0
	for _, r := range rec.Requests() {
		q := r.String()
		for _, l := range layers {
			d, _ := l.Digest()
			// An upload ends with PUT ...?digest=; the config blob (tiny,
			// and not a layer) is the only one allowed to take that path.
			if strings.HasPrefix(q, "PUT /v2/"+b+"/blobs/uploads/") && strings.Contains(q, url.QueryEscape(d.String())) {
				t.Errorf("layer %s uploaded again to %s: %s", d, b, q)
			}
		}
		if strings.HasPrefix(q, "POST /v2/"+b+"/blobs/uploads/") && strings.Contains(q, "from="+url.QueryEscape(a)) {
			mounted++
		}
	}
	if mounted < len(layers) {
		t.Errorf("%d mounts from %s into %s, want one per layer (%d): %v", mounted, a, b, len(layers), rec.Requests())
	}
}

func TestCrossRepositoryMount(t *testing.T) {
	ctx := context.Background()
	host, rec := watchedRegistry(t)
	shared := images(t)
	r := NewRegistry(prefix(t, host), transport.NewRegistry())
	a, _ := name.NewRepository(host + "/agent-images/a")
	b, _ := name.NewRepository(host + "/agent-images/b")
	if _, err := r.pushImage(ctx, a, shared[0].Image); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	if _, err := r.pushImage(ctx, b, shared[0].Image); err != nil {
		t.Fatal(err)
	}
	assertMounted(t, rec, shared[0].Image, "agent-images/b", "agent-images/a")
}

// TestMountFromEarlierRun: a new publisher (another job, the next night)
// mounts layers from a sibling repository it was told about, and a layer the
// sibling lacks is simply uploaded.
func TestMountFromEarlierRun(t *testing.T) {
	ctx := context.Background()
	host, rec := watchedRegistry(t)
	a, _ := name.NewRepository(host + "/agent-images/a")
	b, _ := name.NewRepository(host + "/agent-images/b")
	c, _ := name.NewRepository(host + "/agent-images/c")
	shared := images(t)
	if _, err := NewRegistry(prefix(t, host), transport.NewRegistry()).pushImage(ctx, a, shared[0].Image); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	if _, err := NewRegistry(prefix(t, host), transport.NewRegistry(), WithMountFrom(a, b)).pushImage(ctx, b, shared[0].Image); err != nil {
		t.Fatal(err)
	}
	assertMounted(t, rec, shared[0].Image, "agent-images/b", "agent-images/a")

	// c gets a different image: the guess is wrong, the layers upload.
	if _, err := NewRegistry(prefix(t, host), transport.NewRegistry(), WithMountFrom(a)).pushImage(ctx, c, shared[1].Image); err != nil {
		t.Fatalf("pushing with a wrong mount guess = %v", err)
	}
	if _, err := remote.Image(c.Digest(mustDigest(t, shared[1].Image))); err != nil {
		t.Errorf("image not complete in c after a failed mount guess: %v", err)
	}
}

func mustDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestStaged(t *testing.T) {
	ctx := context.Background()
	host, _ := startRegistry(t)
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	imgs := images(t)
	staged, err := r.Stage(ctx, imgs[1], "sha-abc1234")
	if err != nil {
		t.Fatalf("Stage = %v", err)
	}
	if _, tag, ok, err := r.Staged(ctx, "pi", "sha-abc1234", imgs[0].Platform); err != nil || ok {
		t.Errorf("Staged(amd64, not staged) = %v %v, want not found", ok, err)
	} else if want := host + "/agent-images/pi:staging-sha-abc1234-linux-amd64"; tag.String() != want {
		t.Errorf("staging tag = %s, want %s", tag, want)
	}
	d, _, ok, err := r.Staged(ctx, "pi", "sha-abc1234", imgs[1].Platform)
	want, _ := imgs[1].Image.Digest()
	if err != nil || !ok || d != want || staged.DigestStr() != want.String() {
		t.Errorf("Staged(arm64) = %s %v %v (Stage gave %s), want %s", d, ok, err, staged, want)
	}
}

func TestLayoutPublish(t *testing.T) {
	dir := t.TempDir() + "/oci"
	l := NewLayout(dir)
	rel := Release{Agent: "pi", Images: images(t), Tags: tagged("latest", "1.0")}
	res, err := publishWith(context.Background(), l, rel, nil)
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	again, err := publishWith(context.Background(), l, rel, nil)
	if err != nil || !again.Unchanged || len(again.Moved) != 0 {
		t.Fatalf("second Publish = %+v, %v; want unchanged", again, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, _ := p.ImageIndex()
	m, _ := ii.IndexManifest()
	refs := map[string]v1.Hash{}
	for _, d := range m.Manifests {
		refs[d.Annotations[AnnotationRefName]] = d.Digest
	}
	if len(m.Manifests) != 2 || refs["pi:latest"] != res.Index || refs["pi:1.0"] != res.Index {
		t.Errorf("layout index = %v, want pi:latest and pi:1.0 at %s", refs, res.Index)
	}
	child, err := ii.ImageIndex(res.Index)
	if err != nil {
		t.Fatalf("reading index back: %v", err)
	}
	for _, img := range rel.Images {
		if _, err := child.Image(img.Digest); err != nil {
			t.Errorf("image %s not in layout: %v", img.Platform, err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"ghcr.io/owner/agent-images", ""},
		{"127.0.0.1:5000/x", ""},
		{"localhost:5000", ""},
		{"localhost:99999/x", `port "99999" is not a number from 1 to 65535`},
		{"localhost:0/x", `port "0"`},
		{"user:SECRET@ghcr.io/x", "holds credentials"},
		{"https://ghcr.io/x", "has a scheme"},
		{"Ghcr.io/Owner/X", "not a repository prefix"},
		{"ghcr.io/ai/../evil", `path part ".." is not a registry path component`},
		{"ghcr.io/./x", `path part "."`},
		{"ghcr.io/x?token=SECRET", "holds credentials (user:password@) or a query"},
		{"", "empty"},
	}
	for _, tc := range tests {
		_, err := ParsePrefix(tc.in, false)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParsePrefix(%q) = %v, want ok", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParsePrefix(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
		case err != nil && strings.Contains(err.Error(), "SECRET"):
			t.Errorf("ParsePrefix(%q) = %v: it repeats the secret", tc.in, err)
		}
	}
}

// outcome is what putting a release, then signing it (sign), then moving
// its tags did: the order a release follows.
type outcome struct {
	*Result
	Moves
	Tags []string
}

// publishWith puts rel, runs sign (when not nil) and moves the tags, as a
// release does; nothing moves when sign fails.
func publishWith(ctx context.Context, pub Publisher, rel Release, sign func(context.Context, *Result) error) (*outcome, error) {
	return run(ctx, pub, rel, sign, false)
}

// planned is publishWith in a dry run.
func planned(ctx context.Context, pub Publisher, rel Release) (*outcome, error) {
	return run(ctx, pub, rel, nil, true)
}

func run(ctx context.Context, pub Publisher, rel Release, sign func(context.Context, *Result) error, dryRun bool) (*outcome, error) {
	res, err := pub.Put(ctx, rel, dryRun)
	if err != nil {
		return &outcome{Result: res}, err
	}
	out := &outcome{Result: res, Tags: tags.Names(rel.Moving())}
	if sign != nil && !dryRun {
		if err := sign(ctx, res); err != nil {
			return out, fmt.Errorf("before moving tags of %s: %w", res.Repository, err)
		}
	}
	m, err := pub.MoveTags(ctx, rel, res.Index, dryRun)
	if m != nil {
		out.Moves = *m
	}
	return out, err
}

// TestRepositoryHoldsOneAgent: an agent is one path component under the
// prefix; "../codex" would reach another repository and "Upper" is a name no
// registry holds.
func TestRepositoryHoldsOneAgent(t *testing.T) {
	p := prefix(t, "ghcr.io/acme/agent-images")
	if repo, err := p.Repository("claude-code"); err != nil || repo.String() != "ghcr.io/acme/agent-images/claude-code" {
		t.Errorf("Repository(claude-code) = %v, %v", repo, err)
	}
	for _, agent := range []string{"../codex", "Upper", "a/b", "", ".", "x..y"} {
		if _, err := p.Repository(agent); err == nil || !strings.Contains(err.Error(), "cannot be a repository name") {
			t.Errorf("Repository(%q) = %v, want refused", agent, err)
		}
	}
}

// TestTagsAreReadAgainBeforeTheyMove: an older release that was put, then
// slow to sign, while a newer one ran from start to end, must not move
// latest back over it. MoveTags reads the tags it moves when it runs, after
// the signing, not when the images were put.
func TestTagsAreReadAgainBeforeTheyMove(t *testing.T) {
	ctx := context.Background()
	host, _ := startRegistry(t)
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())
	older := Release{Agent: "pi", Images: images(t), Version: "1.0", Created: day1, Tags: tagged("latest")}
	newer := Release{Agent: "pi", Images: images(t), Version: "1.1", Created: day1.Add(time.Hour), Tags: tagged("latest")}
	put, err := r.Put(ctx, older, false)
	if err != nil {
		t.Fatal(err)
	}
	done, err := publishWith(ctx, r, newer, nil)
	if err != nil {
		t.Fatal(err)
	}
	moves, err := r.MoveTags(ctx, older, put.Index, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(moves.Moved) > 0 || len(moves.Kept) != 1 || moves.Kept[0].Index != done.Index {
		t.Errorf("older MoveTags = moved %v, kept %+v; want latest kept at the newer %s", moves.Moved, moves.Kept, done.Index)
	}
	repo, _ := prefix(t, host+"/agent-images").Repository("pi")
	if desc, err := remote.Head(repo.Tag("latest")); err != nil || desc.Digest != done.Index {
		t.Errorf("latest = %v, %v; want %s", desc, err, done.Index)
	}
}
