package flake

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// dockerArchive writes a random two-layer image for arch as a docker-archive.
func dockerArchive(t *testing.T, arch string) string {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("agent-images/pi:latest")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path
}

func gzipFile(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "image.tar.gz")
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write(data)
	zw.Close()
	f.Close()
	return dst
}

func streamScript(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "stream-pi")
	script := fmt.Sprintf("#!/bin/sh\nexec cat %s\n", src)
	if err := os.WriteFile(dst, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestArchiveFormatsGiveOneImage(t *testing.T) {
	plain := dockerArchive(t, "amd64")
	inputs := map[string]string{
		"tar":    plain,
		"tar.gz": gzipFile(t, plain),
		"stream": streamScript(t, plain),
	}
	var want v1.Hash
	for _, kind := range []string{"tar", "tar.gz", "stream"} {
		t.Run(kind, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out.tar")
			archive, err := Archive(context.Background(), inputs[kind], dest)
			if err != nil {
				t.Fatalf("Archive(%s) = %v", kind, err)
			}
			img, err := ReadImage(context.Background(), archive)
			if err != nil {
				t.Fatalf("Image(%s) = %v", archive, err)
			}
			if err := validate.Image(img); err != nil {
				t.Fatalf("validate.Image = %v", err)
			}
			mt, _ := img.MediaType()
			m, _ := img.Manifest()
			if mt != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || m.Layers[0].MediaType != types.OCILayer {
				t.Errorf("media types = %s, %s, %s; want OCI manifest, config and layer", mt, m.Config.MediaType, m.Layers[0].MediaType)
			}
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if want == (v1.Hash{}) {
				want = d
			} else if d != want {
				t.Errorf("Image(%s).Digest() = %s, want %s like the plain archive", kind, d, want)
			}
		})
	}
}

func TestCheckPlatform(t *testing.T) {
	img, err := ReadImage(context.Background(), dockerArchive(t, "arm64"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPlatform(img, Aarch64Linux); err != nil {
		t.Errorf("CheckPlatform(arm64, aarch64-linux) = %v, want nil", err)
	}
	err = CheckPlatform(img, X86_64Linux)
	if err == nil || !strings.Contains(err.Error(), "linux/arm64, want linux/amd64") {
		t.Errorf("CheckPlatform(arm64, x86_64-linux) = %v, want a platform mismatch", err)
	}
}

func TestArchiveRejectsDirectory(t *testing.T) {
	_, err := Archive(context.Background(), t.TempDir(), filepath.Join(t.TempDir(), "x.tar"))
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Archive(dir) = %v, want an error saying it is a directory", err)
	}
}
