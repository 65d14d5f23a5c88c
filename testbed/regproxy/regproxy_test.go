package regproxy

import (
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

func TestProxyCountsUploads(t *testing.T) {
	p := New(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv := httptest.NewServer(p)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := name.NewRepository(host + "/x/a")
	if err := remote.Write(a.Tag("v1"), img); err != nil {
		t.Fatal(err)
	}
	var want int64
	layers, _ := img.Layers()
	for _, l := range layers {
		size, _ := l.Size()
		want += size
	}
	m, _ := img.Manifest()
	raw, _ := img.RawManifest()
	want += m.Config.Size + int64(len(raw))

	got := p.Summary()
	if got.BlobUploads != 3 || got.ManifestPuts != 1 || got.Mounts != 0 || got.BytesUploaded != want {
		t.Errorf("Summary() after a push = %+v, want 3 blob uploads, 1 manifest PUT, no mount, %d bytes", got, want)
	}
	if got.Writes == 0 || got.Writes >= got.Requests {
		t.Errorf("first push: %d writes of %d requests, want some writes and some reads", got.Writes, got.Requests)
	}
}

// TestProxyCountsMounts needs a registry that keeps blobs per repository, as
// real ones do (the in-process one finds every blob everywhere).
func TestProxyCountsMounts(t *testing.T) {
	upstream, err := url.Parse("http://" + testenv.StartRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	p := To(upstream)
	srv := httptest.NewServer(p)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	img, err := random.Image(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := name.NewRepository(host + "/x/a")
	if err := remote.Write(a.Tag("v1"), img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	p.Reset()
	b, _ := name.NewRepository(host + "/x/b")
	ml := &remote.MountableLayer{Layer: layers[0], Reference: a.Digest(mustDigest(t, layers[0]))}
	if err := remote.WriteLayer(b, ml); err != nil {
		t.Fatal(err)
	}
	if got := p.Summary(); got.Mounts != 1 || got.BlobUploads != 0 || got.BytesUploaded != 0 {
		t.Errorf("mount: Summary() = %+v, want one mount and nothing uploaded", got)
	}
	for _, w := range p.Writes() {
		if !strings.HasPrefix(w, "POST /v2/x/b/blobs/uploads/") {
			t.Errorf("mount wrote %s, want only the mounting POST", w)
		}
	}
}

func mustDigest(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
