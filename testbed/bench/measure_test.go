package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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

// TestUniqueLayers adds up a layer two archives share once. Nix names a
// layer's entry after its uncompressed digest.
func TestUniqueLayers(t *testing.T) {
	dir := t.TempDir()
	write := func(file string, layers map[string]int) {
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		tw := tar.NewWriter(f)
		for name, size := range layers {
			tw.WriteHeader(&tar.Header{Name: name + "/layer.tar", Mode: 0o444, Size: int64(size), Typeflag: tar.TypeReg})
			tw.Write(make([]byte, size))
		}
		tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o444, Size: 2, Typeflag: tar.TypeReg})
		tw.Write([]byte("[]"))
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	write("pi-x86_64-linux.tar", map[string]int{"aa": 1000, "bb": 200})
	write("codex-x86_64-linux.tar", map[string]int{"aa": 1000, "cc": 30})
	got, err := uniqueLayers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != (archiveSet{images: 2, layers: 3, bytes: 1230}) {
		t.Errorf("uniqueLayers = %+v, want 2 images, 3 layers, 1230 bytes", got)
	}
	if _, err := uniqueLayers(t.TempDir()); err == nil {
		t.Errorf("uniqueLayers of a directory without archives = nil error, want one")
	}
}

func TestSplitArchive(t *testing.T) {
	for file, want := range map[string][2]string{
		"claude-code-x86_64-linux.tar": {"claude-code", "x86_64-linux"},
		"pi-aarch64-linux.tar":         {"pi", "aarch64-linux"},
	} {
		agent, system, ok := splitArchive(file)
		if !ok || agent != want[0] || system != want[1] {
			t.Errorf("splitArchive(%q) = %q, %q, %v; want %q, %q", file, agent, system, ok, want[0], want[1])
		}
	}
	if _, _, ok := splitArchive("pi.tar"); ok {
		t.Errorf("splitArchive(pi.tar) ok, want not")
	}
}
