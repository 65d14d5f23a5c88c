package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/regproxy"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestStoredBytesCountsEachBlobOnce: the "new bytes stored" figure is every
// blob and manifest the registry keeps, once, however many repositories
// link it.
func TestStoredBytesCountsEachBlobOnce(t *testing.T) {
	dir := t.TempDir()
	testenv.Require(t, "docker-registry")
	reg, err := testenv.RunRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	img, err := random.Image(1<<16, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"a", "b"} {
		ref, _ := name.ParseReference(reg.Addr+"/x/"+repo+":latest", name.Insecure)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := img.Manifest()
	raw, _ := img.RawManifest()
	want := m.Config.Size + int64(len(raw))
	for _, l := range m.Layers {
		want += l.Size
	}
	got, err := storedBytes(reg.Storage)
	if err != nil || got != want {
		t.Errorf("storedBytes = %d, %v; want %d (three layers, a config and a manifest, once)", got, err, want)
	}
}

// TestMountLimitMountsWhatThePushMounted: the mount limit makes again,
// into new repositories, exactly the mounts a push made, and each lands.
func TestMountLimitMountsWhatThePushMounted(t *testing.T) {
	testenv.Require(t, "docker-registry")
	reg, err := testenv.RunRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	u, _ := url.Parse("http://" + reg.Addr)
	proxy := regproxy.To(u)
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(1<<12, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := name.NewRepository(host+"/x/a", name.Insecure)
	if err := remote.Write(a.Tag("latest"), img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		b, _ := name.NewRepository(host+"/x/b", name.Insecure)
		ml := &remote.MountableLayer{Layer: l, Reference: a.Digest(d.String())}
		if err := remote.WriteLayer(b, ml); err != nil {
			t.Fatal(err)
		}
	}
	n, took, err := mountLimit(context.Background(), reg.Addr, proxy.Requests())
	if err != nil || n != len(layers) || took <= 0 {
		t.Fatalf("mountLimit = %d mounts in %s, %v; want the push's %d", n, took, err, len(layers))
	}
	for _, l := range layers {
		d, _ := l.Digest()
		resp, err := http.Head("http://" + reg.Addr + "/v2/mount-limit/x/b/blobs/" + d.String())
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("blob %s in mount-limit/x/b: %v %v, want it mounted", d, resp, err)
		}
	}
}

// writeArchive writes a docker-archive as Nix lays it out: each layer's
// tar as <name>/layer.tar, the config naming their diff IDs, manifest.json.
func writeArchive(t *testing.T, path string, layers map[string][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	var config v1.ConfigFile
	config.RootFS.Type = "layers"
	var paths []string
	for _, name := range slices.Sorted(maps.Keys(layers)) {
		add(name+"/layer.tar", layers[name])
		sum := sha256.Sum256(layers[name])
		config.RootFS.DiffIDs = append(config.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])})
		paths = append(paths, name+"/layer.tar")
	}
	raw, _ := json.Marshal(config)
	add("config.json", raw)
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{}, "Layers": paths}})
	add("manifest.json", manifest)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// layerTar is a layer holding one file of n bytes that compress like text.
func layerTar(t *testing.T, n int) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "payload", Mode: 0o444, Size: int64(n), Typeflag: tar.TypeReg})
	tw.Write(bytes.Repeat([]byte("agent-images bench payload "), n/27+1)[:n])
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestUniqueLayers adds up a layer two archives share once. Nix names a
// layer's entry after its uncompressed digest.
func TestUniqueLayers(t *testing.T) {
	dir := t.TempDir()
	pi, codex := filepath.Join(dir, "pi-x86_64-linux.tar"), filepath.Join(dir, "codex-x86_64-linux.tar")
	writeArchive(t, pi, map[string][]byte{"aa": make([]byte, 1000), "bb": make([]byte, 200)})
	writeArchive(t, codex, map[string][]byte{"aa": make([]byte, 1000), "cc": make([]byte, 30)})
	got, err := uniqueLayers([]archive{{path: pi}, {path: codex}})
	if err != nil {
		t.Fatal(err)
	}
	if got != (layerSet{layers: 3, bytes: 1230}) {
		t.Errorf("uniqueLayers = %+v, want 3 layers, 1230 bytes", got)
	}
	if _, err := uniqueLayers(nil); err == nil {
		t.Errorf("uniqueLayers of no archives = nil error, want one")
	}
}

// TestCompressIsRelease: the compression limit is measured with the
// compressor release uses, so a layer comes out as the blob release would
// push (flake.ReadImage gzips as release does), and compressSpeed refuses
// a registry that does not hold what its compressor writes.
func TestCompressIsRelease(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pi-x86_64-linux.tar")
	layer := layerTar(t, 3<<20)
	writeArchive(t, path, map[string][]byte{"aa": layer})
	img, err := flake.ReadImage(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	want, _ := layers[0].Digest()
	h := sha256.New()
	if err := compress(h, flake.Gzip, layer); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		t.Errorf("compress(gzip) = sha256:%s, want %s, release's", got, want)
	}

	storage := filepath.Join(dir, "registry")
	if _, err := compressSpeed([]archive{{path: path}}, flake.Gzip, storage); err == nil {
		t.Errorf("compressSpeed with a registry that holds no blob = nil error, want one")
	}
	blob := filepath.Join(storage, "docker", "registry", "v2", "blobs", "sha256", want.Hex[:2], want.Hex, "data")
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if speed, err := compressSpeed([]archive{{path: path}}, flake.Gzip, storage); err != nil || speed <= 0 {
		t.Errorf("compressSpeed = %g, %v; want a speed", speed, err)
	}
}

// TestTableRowsHaveEveryColumn: each row of the printed table, the runs'
// and the limits', has as many cells as the header, so the Markdown
// renders as one table in docs/benchmark.md.
func TestTableRowsHaveEveryColumn(t *testing.T) {
	run := func(name string, wall, cpu time.Duration) row {
		return row{name: name, wall: wall, cpu: cpu, bed: bedCPU{wall * 3 / 10, wall / 5}, busy: 0.9, peakRSS: 90e6, stored: 200e6, nix: map[string]int{"eval": 1}}
	}
	push := run(pushRun, 20*time.Second, 13*time.Second)
	b := &bench{
		config: config{scale: 0.05, agents: "all", runtime: "none"},
		start:  time.Now(),
		rows:   []row{run(coldRun, 70*time.Second, 95*time.Second), push, run(warmRun, 17*time.Second, 6*time.Second), run(baselineRun, 50*time.Second, 33*time.Second)},
		limits: limits{images: 60, layers: 948, uncompressed: 480e6, throughput: 216e6, throughputBusy: 0.5,
			compress: []compressLimit{{compression: "gzip", push: push, speed: 218e6, busy: 0.9}},
			mounts:   3800, mountTime: 5 * time.Second, mountBusy: 0.8},
	}
	var out strings.Builder
	b.print(&out)
	var header int
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Count(line, "|")
		if header == 0 {
			header = cells
		} else if cells != header {
			t.Errorf("%d cells, the header has %d: %s", cells-1, header-1, line)
		}
	}
	if header == 0 {
		t.Fatalf("no table printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "registry and its proxy took 15% and 10% of the cores") {
		t.Errorf("the cold release's target line does not say what the test bed's registry took:\n%s", out.String())
	}
	// The push's test bed used 6 s + 4 s of CPU, 5 s on 2 cores, and
	// compressing 480 MB at 218 MB/s takes 2.2 s more; the warm release's
	// used 8.5 s, 4.2 s on 2 cores.
	for _, want := range []string{"no push on these 2 cores can take less than 7.2 s", "on these 2 cores that alone takes 4.2 s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the targets do not say %q:\n%s", want, out.String())
		}
	}
}
