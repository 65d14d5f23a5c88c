package publish

import (
	"context"
	"fmt"
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
)

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
// time to different repositories upload a layer they share once; the others
// wait for that upload and mount it. The bytes sent are then exactly the
// unique blobs plus the manifests.
func TestConcurrentPushesUploadSharedLayersOnce(t *testing.T) {
	ctx := context.Background()
	host, rec := watchedRegistry(t)
	images, shared := agentImages(t, 4)
	r := NewRegistry(prefix(t, host+"/agent-images"), nil)

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(images))
	repos := make([]name.Repository, len(images))
	for i, img := range images {
		repos[i], _ = name.NewRepository(fmt.Sprintf("%s/agent-images/a%d", host, i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = r.PushImage(ctx, repos[i], img)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PushImage(%s) = %v", repos[i], err)
		}
	}

	uploads := map[string]int{}
	var mounts int
	for _, q := range rec.Requests() {
		if q.Method == http.MethodPut && strings.Contains(q.Path, "/blobs/uploads/") && q.Status == http.StatusCreated {
			v, _ := url.ParseQuery(q.RawQuery)
			uploads[v.Get("digest")]++
		}
		if q.Method == http.MethodPost && strings.Contains(q.RawQuery, "mount=") && q.Status == http.StatusCreated {
			mounts++
		}
	}
	for _, l := range shared {
		d, _ := l.Digest()
		if uploads[d.String()] != 1 {
			t.Errorf("shared layer %s uploaded %d times, want once", d, uploads[d.String()])
		}
	}
	if want := len(shared) * (len(images) - 1); mounts != want {
		t.Errorf("%d mounts, want %d (each shared layer into every repository but the first)", mounts, want)
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
