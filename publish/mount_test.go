package publish

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/record"
)

// pushImage uploads img to repo by digest, as Stage does before it tags it.
func (r *Registry) pushImage(ctx context.Context, repo name.Repository, img v1.Image) (name.Digest, error) {
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	ref := repo.Digest(d.String())
	return ref, r.upload(ctx, repo, ref, img)
}

// agentImages returns n images that share three layers (a base and two
// runtimes) and have one layer of their own, as the agents of a release do.
func agentImages(t *testing.T, n int) (images []v1.Image, shared []v1.Layer) {
	t.Helper()
	for range 3 {
		l, err := random.Layer(2<<20, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		shared = append(shared, l)
	}
	for range n {
		own, err := random.Layer(64<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, append(append([]v1.Layer(nil), shared...), own)...)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img)
	}
	return images, shared
}

// TestConcurrentPushesUploadSharedLayersOnce: agents pushed at the same
// time to different repositories, two images each (as two platforms are),
// upload a layer they share once; the others wait for that upload and mount
// it, without asking the registry first, in one request per repository.
// The bytes sent are then exactly the unique blobs plus the manifests.
func TestConcurrentPushesUploadSharedLayersOnce(t *testing.T) {
	ctx := context.Background()
	host, rec := watchedRegistry(t)
	const agents, perAgent = 6, 2
	images, shared := agentImages(t, agents*perAgent)
	r := NewRegistry(prefix(t, host+"/agent-images"), transport.NewRegistry())

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(images))
	repos := make([]name.Repository, len(images))
	for i, img := range images {
		repos[i], _ = name.NewRepository(fmt.Sprintf("%s/agent-images/a%d", host, i%agents))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = r.pushImage(ctx, repos[i], img)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pushImage(%s) = %v", repos[i], err)
		}
	}

	// pair is one blob in one repository, as requests name it.
	type pair struct{ repo, digest string }
	uploads := map[string]int{}
	mounted, heads, writes := map[pair]bool{}, map[pair]int{}, map[pair]int{}
	for _, q := range rec.Requests() {
		repo, blob, _ := strings.Cut(strings.TrimPrefix(q.Path, "/v2/"), "/blobs/")
		v, _ := url.ParseQuery(q.RawQuery)
		switch {
		case q.Method == http.MethodHead:
			heads[pair{repo, blob}]++
		case q.Method == http.MethodPut && q.Status == http.StatusCreated:
			uploads[v.Get("digest")]++
			writes[pair{repo, v.Get("digest")}]++
		case q.Method == http.MethodPost && v.Has("mount"):
			writes[pair{repo, v.Get("mount")}]++
			mounted[pair{repo, v.Get("mount")}] = mounted[pair{repo, v.Get("mount")}] || q.Status == http.StatusCreated
		}
	}
	for _, l := range shared {
		d, _ := l.Digest()
		if uploads[d.String()] != 1 {
			t.Errorf("shared layer %s uploaded %d times, want once", d, uploads[d.String()])
		}
	}
	if want := len(shared) * (agents - 1); len(mounted) != want {
		t.Errorf("%d (repository, blob) pairs mounted, want %d (each shared layer into every repository but the first)", len(mounted), want)
	}
	for p, ok := range mounted {
		if !ok {
			t.Errorf("%s into %s: mount not answered 201", p.digest, p.repo)
		}
		if heads[p] != 0 || writes[p] != 1 {
			t.Errorf("%s into %s: %d HEADs and %d writes, want none and one (the mount)", p.digest, p.repo, heads[p], writes[p])
		}
	}

	// Bytes uploaded = unique blobs + manifests, nothing twice.
	unique := map[v1.Hash]int64{}
	var manifests int64
	for i, img := range images {
		layers, _ := img.Layers()
		for _, l := range layers {
			d, _ := l.Digest()
			unique[d], _ = l.Size()
		}
		m, _ := img.Manifest()
		unique[m.Config.Digest] = m.Config.Size
		raw, _ := img.RawManifest()
		manifests += int64(len(raw))
		// Every repository holds its complete image.
		got, err := remote.Image(repos[i].Digest(mustDigest(t, img)))
		if err != nil {
			t.Fatalf("reading back %s: %v", repos[i], err)
		}
		gl, _ := got.Layers()
		for _, l := range gl {
			d, _ := l.Digest()
			if _, err := remote.Layer(repos[i].Digest(d.String())); err != nil {
				t.Errorf("%s lacks layer %s: %v", repos[i], d, err)
			}
		}
	}
	want := manifests
	for _, size := range unique {
		want += size
	}
	if got := rec.Summary().BytesUploaded; got != want {
		t.Errorf("bytes uploaded = %d, want %d (unique blobs and manifests, each once)", got, want)
	}
}

// unreadable is a layer whose bytes must not be read: the registry has it.
type unreadable struct {
	v1.Layer
	t *testing.T
}

func (u unreadable) Compressed() (io.ReadCloser, error) {
	d, _ := u.Digest()
	u.t.Errorf("layer %s was read although the registry has it", d)
	return u.Layer.Compressed()
}

func (u unreadable) Uncompressed() (io.ReadCloser, error) {
	d, _ := u.Digest()
	u.t.Errorf("layer %s was read although the registry has it", d)
	return u.Layer.Uncompressed()
}

// release is agent's one-platform release of an image of layers.
func release(t *testing.T, agent string, layers ...v1.Layer) Release {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	rec := &record.Image{Agent: agent, System: "x86_64-linux", Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: img}
	rec.Digest, _ = img.Digest()
	return Release{Agent: agent, Images: []*record.Image{rec}, Version: "1.0", Created: day1, Tags: tagged("latest")}
}

func randomLayer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLayersTheRegistryHasAreNeverRead: a run that read what is published
// (each agent's latest, every blob checked) knows which repository holds
// which layer. A new agent's layer that only the third agent's repository
// holds is mounted from there, not guessed from the first sibling and
// uploaded again; a layer the agent's own repository holds is not asked
// about again. Neither is read.
func TestLayersTheRegistryHasAreNeverRead(t *testing.T) {
	ctx := context.Background()
	host, rec := watchedRegistry(t)
	p := prefix(t, host+"/agent-images")
	repo := func(a string) name.Repository { r, _ := p.Repository(a); return r }
	siblings := WithMountFrom(repo("a0"), repo("a1"))
	base, node := randomLayer(t, 1<<20), randomLayer(t, 1<<20)

	earlier := NewRegistry(p, transport.NewRegistry(), siblings)
	for _, rel := range []Release{
		release(t, "a0", base, randomLayer(t, 4096)),
		release(t, "a1", base, randomLayer(t, 4096)),
		release(t, "a2", base, node, randomLayer(t, 4096)),
	} {
		if _, err := publishWith(ctx, earlier, rel, nil); err != nil {
			t.Fatal(err)
		}
	}

	r := NewRegistry(p, transport.NewRegistry(), siblings)
	for _, a := range []string{"a0", "a1", "a2"} {
		if pub, err := r.Published(ctx, a); err != nil || pub == nil || !pub.Images[0].Present {
			t.Fatalf("Published(%s) = %+v, %v; want its image, present", a, pub, err)
		}
	}
	nodeDigest, _ := node.Digest()
	baseDigest, _ := base.Digest()
	rec.Reset()
	had := []v1.Layer{unreadable{base, t}, unreadable{node, t}}
	var g errgroup.Group
	for _, rel := range []Release{
		release(t, "a3", append(had, randomLayer(t, 4096))...),
		release(t, "a2", append(had, randomLayer(t, 4096))...),
	} {
		g.Go(func() error { _, err := publishWith(ctx, r, rel, nil); return err })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	for _, q := range rec.Requests() {
		if q.Method == http.MethodHead && (q.Path == "/v2/agent-images/a2/blobs/"+baseDigest.String() || q.Path == "/v2/agent-images/a2/blobs/"+nodeDigest.String()) {
			t.Errorf("%s: checked again, after Published found it", q)
		}
		if q.Method == http.MethodPost && strings.Contains(q.RawQuery, "mount="+url.QueryEscape(nodeDigest.String())) {
			if want := "from=" + url.QueryEscape("agent-images/a2"); !strings.Contains(q.RawQuery, want) || q.Status != http.StatusCreated {
				t.Errorf("%s = %d, want a mount from a2, the repository known to hold it", q, q.Status)
			}
		}
	}
	for _, d := range []v1.Hash{baseDigest, nodeDigest} {
		if _, err := remote.Layer(repo("a3").Digest(d.String())); err != nil {
			t.Errorf("a3 lacks %s: %v", d, err)
		}
	}
}
