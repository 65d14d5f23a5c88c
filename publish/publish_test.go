package publish

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
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

	"github.com/nothingnesses/agent-images/internal/regproxy"
	"github.com/nothingnesses/agent-images/internal/testenv"
)

func startRegistry(t *testing.T) (string, *regproxy.Proxy) {
	t.Helper()
	rec := regproxy.New(registry.New(registry.Logger(nilLogger())))
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), rec
}

func parts(t *testing.T) []Part {
	t.Helper()
	var out []Part
	for _, arch := range []string{"arm64", "amd64"} {
		img, err := random.Image(256, 2)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		img, _ = mutate.ConfigFile(img, cf)
		out = append(out, Part{Platform: v1.Platform{OS: "linux", Architecture: arch}, Image: img})
	}
	return out
}

func TestRegistryPublish(t *testing.T) {
	ctx := context.Background()
	host, rec := startRegistry(t)
	repo, _ := name.NewRepository(host + "/agent-images/pi")
	rel := Release{
		Agent:       "pi",
		Parts:       parts(t),
		Annotations: map[string]string{AnnotationVersion: "1.0"},
		Tags:        []string{"latest", "1.0", "2026-11-27"},
	}
	r := NewRegistry()
	var hookSaw []string
	hook := func(ctx context.Context, res *Result) error {
		// Everything is in the registry and no tag exists yet.
		if _, err := remote.Head(repo.Digest(res.Index.String())); err != nil {
			t.Errorf("index not pushed before hook: %v", err)
		}
		for _, p := range res.Platforms {
			if _, err := remote.Head(repo.Digest(p.Digest.String())); err != nil {
				t.Errorf("%s not pushed before hook: %v", p.Platform, err)
			}
		}
		_, err := remote.Head(repo.Tag("latest"))
		hookSaw = append(hookSaw, res.Index.String())
		if err == nil && !res.Unchanged {
			t.Errorf("tag latest exists before hook on a first release")
		}
		return nil
	}
	res, err := r.Publish(ctx, repo, rel, hook)
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	if res.Unchanged || len(res.Moved) != 3 {
		t.Errorf("first Publish: Unchanged=%v Moved=%v, want false and all tags", res.Unchanged, res.Moved)
	}
	for _, tag := range rel.Tags {
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
	if im.Annotations[AnnotationVersion] != "1.0" {
		t.Errorf("index annotations = %v, want version 1.0", im.Annotations)
	}

	rec.Reset()
	again, err := r.Publish(ctx, repo, rel, hook)
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

func TestHookFailureMovesNoTag(t *testing.T) {
	host, _ := startRegistry(t)
	repo, _ := name.NewRepository(host + "/agent-images/codex")
	rel := Release{Agent: "codex", Parts: parts(t), Tags: []string{"latest"}}
	_, err := NewRegistry().Publish(context.Background(), repo, rel, func(context.Context, *Result) error {
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
	shared := parts(t)
	r := NewRegistry()
	a, _ := name.NewRepository(host + "/agent-images/a")
	b, _ := name.NewRepository(host + "/agent-images/b")
	if _, err := r.PushImage(ctx, a, shared[0].Image); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	if _, err := r.PushImage(ctx, b, shared[0].Image); err != nil {
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
	shared := parts(t)
	if _, err := NewRegistry().PushImage(ctx, a, shared[0].Image); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	if _, err := NewRegistry(WithMountFrom(a, b)).PushImage(ctx, b, shared[0].Image); err != nil {
		t.Fatal(err)
	}
	assertMounted(t, rec, shared[0].Image, "agent-images/b", "agent-images/a")

	// c gets a different image: the guess is wrong, the layers upload.
	if _, err := NewRegistry(WithMountFrom(a)).PushImage(ctx, c, shared[1].Image); err != nil {
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
	repo, _ := name.NewRepository(host + "/agent-images/pi")
	r := NewRegistry()
	ps := parts(t)
	if _, err := r.Stage(ctx, repo, "sha-abc1234", ps[1]); err != nil {
		t.Fatalf("Stage = %v", err)
	}
	platforms := []v1.Platform{ps[0].Platform, ps[1].Platform}
	_, err := r.Staged(ctx, repo, "sha-abc1234", platforms)
	if err == nil || !strings.Contains(err.Error(), "linux/arm64 (no "+host+"/agent-images/pi:staging-sha-abc1234-linux-arm64)") {
		t.Fatalf("Staged with arm64 missing = %v, want an error naming the arm64 staging tag", err)
	}
	if _, err := r.Stage(ctx, repo, "sha-abc1234", ps[0]); err != nil {
		t.Fatal(err)
	}
	got, err := r.Staged(ctx, repo, "sha-abc1234", platforms)
	if err != nil {
		t.Fatalf("Staged = %v", err)
	}
	for i, g := range got {
		want, _ := ps[i].Image.Digest()
		d, _ := g.Image.Digest()
		if d != want {
			t.Errorf("Staged[%d] = %s, want %s", i, d, want)
		}
	}
}

func TestLayoutPublish(t *testing.T) {
	dir := t.TempDir() + "/oci"
	l, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	rel := Release{Agent: "pi", Parts: parts(t), Tags: []string{"latest", "1.0"}}
	res, err := l.Publish(context.Background(), rel, nil)
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	again, err := l.Publish(context.Background(), rel, nil)
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
	for _, pr := range res.Platforms {
		if _, err := child.Image(pr.Digest); err != nil {
			t.Errorf("image %s not in layout: %v", pr.Platform, err)
		}
	}
}

func TestTags(t *testing.T) {
	now := time.Date(2026, 11, 27, 23, 30, 0, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name    string
		policy  TagPolicy
		want    string
		wantErr string
	}{
		{name: "all", policy: TagPolicy{Version: "1.2.3", Commit: "0123456789abcdef", Now: now, Extra: []string{"nightly"}}, want: "latest 1.2.3 2026-11-27 sha-0123456 nightly"},
		{name: "no commit", policy: TagPolicy{Version: "0.0.1777525425-gadc8b1", Now: now}, want: "latest 0.0.1777525425-gadc8b1 2026-11-27"},
		{name: "plus in version", policy: TagPolicy{Version: "1.0+build.5", Now: now}, want: "latest 1.0-build.5 2026-11-27"},
		{name: "duplicate extra", policy: TagPolicy{Version: "1.0", Now: now, Extra: []string{"latest", "1.0"}}, want: "latest 1.0 2026-11-27"},
		{name: "bad extra", policy: TagPolicy{Now: now, Extra: []string{"-x"}}, wantErr: `--tag "-x" is not a valid tag`},
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
			if err != nil || strings.Join(got, " ") != tc.want {
				t.Errorf("Tags() = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
