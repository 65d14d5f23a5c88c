package flake

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// nixArchive writes a docker-archive the way Nix's dockerTools does: layer
// tars stored uncompressed, a config naming their diff IDs, manifest.json.
func nixArchive(t *testing.T, arch string, layers ...v1.Layer) string {
	t.Helper()
	cf := v1.ConfigFile{OS: "linux", Architecture: arch, RootFS: v1.RootFS{Type: "layers"}}
	var names []string
	var files [][]byte
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		d, _ := l.DiffID()
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, d)
		names = append(names, fmt.Sprintf("%d/layer.tar", i))
		files = append(files, data)
	}
	config, _ := json.Marshal(cf)
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"agent-images/x:latest"}, "Layers": names}})

	path := filepath.Join(t.TempDir(), arch+".tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range names {
		add(names[i], files[i])
	}
	add("config.json", config)
	add("manifest.json", manifest)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomLayer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, types.OCIUncompressedLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testCache(t *testing.T, dir string, c Compression) *layerCache {
	t.Helper()
	cache, err := newLayerCache(dir, c, 2)
	if err != nil {
		t.Fatal(err)
	}
	return cache
}

// TestEachLayerCompressedOnce: two images sharing two layers are loaded,
// pushed to a registry and written into a layout, and only the four
// distinct layers are ever compressed, when the archives are loaded. After
// loading, the archives are deleted: writing can only send the stored
// compressed bytes, and what arrives matches the digests that name it.
func TestEachLayerCompressedOnce(t *testing.T) {
	shared := []v1.Layer{randomLayer(t, 1<<20), randomLayer(t, 256<<10)}
	a := nixArchive(t, "amd64", shared[0], shared[1], randomLayer(t, 64<<10))
	b := nixArchive(t, "arm64", shared[0], shared[1], randomLayer(t, 64<<10))

	store := testCache(t, filepath.Join(t.TempDir(), "layers"), Gzip)
	compressions := &store.packed
	var images []v1.Image
	for _, archive := range []string{a, b} {
		img, err := store.archiveImage(context.Background(), archive)
		if err != nil {
			t.Fatalf("Image(%s) = %v", archive, err)
		}
		images = append(images, img)
	}
	if n := compressions.Load(); n != 4 {
		t.Fatalf("loading compressed %d layers, want 4 (two shared, one of each image's own)", n)
	}
	for _, archive := range []string{a, b} {
		if err := os.Remove(archive); err != nil {
			t.Fatal(err)
		}
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	lp, err := layout.Write(filepath.Join(t.TempDir(), "oci"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range images {
		ref, _ := name.ParseReference(fmt.Sprintf("%s/agent-images/x%d:latest", strings.TrimPrefix(srv.URL, "http://"), i))
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("pushing image %d: %v", i, err)
		}
		if err := lp.AppendImage(img); err != nil {
			t.Fatalf("writing image %d into a layout: %v", i, err)
		}
		back, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(back); err != nil {
			t.Errorf("image %d as pushed: %v", i, err)
		}
		d, _ := img.Digest()
		fromLayout, err := lp.Image(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(fromLayout); err != nil {
			t.Errorf("image %d in the layout: %v", i, err)
		}
	}
	if n := compressions.Load(); n != 4 {
		t.Errorf("%d compressions after pushing and writing a layout, want still 4", n)
	}
}

// TestLayerCacheRefusesWrongDiffID: a layer whose bytes are not what the
// config says is an error, not a file that would stand for another layer.
func TestLayerCacheRefusesWrongDiffID(t *testing.T) {
	good, other := randomLayer(t, 4096), randomLayer(t, 4096)
	archive := nixArchive(t, "amd64", good)
	// Swap in another layer's bytes under the same name.
	damaged := nixArchive(t, "amd64", other)
	data, _ := os.ReadFile(archive)
	otherData, _ := os.ReadFile(damaged)
	cfgGood, cfgOther := configOf(t, data), configOf(t, otherData)
	if err := os.WriteFile(damaged, bytes.Replace(otherData, cfgOther, cfgGood, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := testCache(t, t.TempDir(), Gzip).archiveImage(context.Background(), damaged)
	d, _ := good.DiffID()
	if err == nil || !strings.Contains(err.Error(), "layer listed as "+d.String()) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Image(damaged archive) = %v, want an error naming the layer and saying the archive is damaged", err)
	}
}

// configOf returns the bytes of config.json in a docker-archive.
func configOf(t *testing.T, archive []byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no config.json: %v", err)
		}
		if h.Name == "config.json" {
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}

// TestLayerCacheStopsWhenCancelled: a cancelled release does not go on
// compressing, and leaves no file that would pass for the layer.
func TestLayerCacheStopsWhenCancelled(t *testing.T) {
	archive := nixArchive(t, "amd64", randomLayer(t, 1<<20))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := filepath.Join(t.TempDir(), "layers")
	if _, err := testCache(t, dir, Gzip).archiveImage(ctx, archive); !errors.Is(err, context.Canceled) {
		t.Fatalf("Image with a cancelled context = %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("cancelled compression left %v in the store", left)
	}
}

// TestStoreLayerPackedOnceEver packs store layers through one cache from
// many images at once, then through another on the same directory (a
// later run): each layer is packed once, a removed compressed file is
// packed again to the same digest, and zstd gives other bytes under its
// own media type.
func TestStoreLayerPackedOnceEver(t *testing.T) {
	store := t.TempDir()
	var paths []string
	for i, body := range []string{"shared", "own"} {
		p := filepath.Join(store, fmt.Sprintf("%032d-pkg", i))
		if err := os.MkdirAll(filepath.Join(p, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "bin", "tool"), bytes.Repeat([]byte(body), 1000), 0o555); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	own := owner{Uname: "root", Gname: "root", Mtime: 1}
	ctx := context.Background()
	dir := t.TempDir()

	first := testCache(t, dir, Gzip)
	layers := make([]*cachedLayer, 8)
	var wg sync.WaitGroup
	for i := range layers {
		wg.Go(func() {
			l, err := first.storeLayer(ctx, paths[i%2:i%2+1], own)
			if err != nil {
				t.Error(err)
			}
			layers[i] = l
		})
	}
	wg.Wait()
	if n := first.packed.Load(); n != 2 {
		t.Fatalf("8 images of 2 distinct layers packed %d, want 2", n)
	}

	later := testCache(t, dir, Gzip)
	l, err := later.storeLayer(ctx, paths[:1], own)
	if err != nil {
		t.Fatal(err)
	}
	if n := later.packed.Load(); n != 0 || l.entry != layers[0].entry {
		t.Fatalf("a later run packed %d layers and has %+v, want none and %+v", n, l.entry, layers[0].entry)
	}
	checkLayer(t, l)

	if err := os.Remove(l.path + ".blob"); err != nil {
		t.Fatal(err)
	}
	checkLayer(t, l)
	if n := later.packed.Load(); n != 1 {
		t.Errorf("a removed layer was packed %d times, want once again", n)
	}

	// An entry cut short (or written before the entry held every field) is
	// never served: the layer is packed again.
	if err := os.WriteFile(l.path+".json", []byte(`{"diffID":"`+l.entry.DiffID.String()+`","digest":"`+l.entry.Digest.String()+`","size":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	partial := testCache(t, dir, Gzip)
	p, err := partial.storeLayer(ctx, paths[:1], own)
	if err != nil {
		t.Fatal(err)
	}
	if n := partial.packed.Load(); n != 1 || p.entry != layers[0].entry {
		t.Errorf("after a partial entry: packed %d, entry %+v; want 1 and %+v", n, p.entry, layers[0].entry)
	}

	zstd := testCache(t, dir, Zstd)
	z, err := zstd.storeLayer(ctx, paths[:1], own)
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := z.MediaType()
	if z.entry.Digest == l.entry.Digest || z.entry.DiffID != l.entry.DiffID || mt != "application/vnd.oci.image.layer.v1.tar+zstd" {
		t.Errorf("zstd layer %+v (%s), gzip %+v: want another digest, the same diff ID and the zstd media type", z.entry, mt, l.entry)
	}
	checkLayer(t, z)
}

// checkLayer reads l both ways: the bytes match its digest, size and diff ID.
func checkLayer(t *testing.T, l *cachedLayer) {
	t.Helper()
	for _, read := range []struct {
		open func() (io.ReadCloser, error)
		want v1.Hash
		size int64
	}{{l.Compressed, l.entry.Digest, l.entry.Size}, {l.Uncompressed, l.entry.DiffID, l.entry.UncompressedSize}} {
		rc, err := read.open()
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || got != read.want || n != read.size {
			t.Errorf("layer read as %s (%d bytes, %v), want %s (%d bytes)", got, n, err, read.want, read.size)
		}
	}
}

func TestParseCompressionRefusesByName(t *testing.T) {
	for _, s := range []string{"gzip", "zstd"} {
		if c, err := ParseCompression(s); err != nil || string(c) != s {
			t.Errorf("ParseCompression(%q) = %q, %v", s, c, err)
		}
	}
	if _, err := ParseCompression("lz4"); err == nil || !strings.Contains(err.Error(), `"lz4"`) {
		t.Errorf("ParseCompression(lz4) = %v, want refused by name", err)
	}
}
