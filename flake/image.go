package flake

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/nothingnesses/agent-images/internal/safefile"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Archive makes the output of a Nix image build available as an uncompressed
// docker-archive and returns its path. It accepts what
// dockerTools.buildLayeredImage makes (a .tar or .tar.gz; gzip is detected by
// its magic number, not the name) and what streamLayeredImage makes (an
// executable that writes the archive to its standard output). An
// uncompressed archive is used where it lies; anything else is written to
// dest.
func Archive(ctx context.Context, outPath, dest string) (string, error) {
	fi, err := os.Stat(outPath)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%s is a directory, want an image archive or a stream script from dockerTools", outPath)
	}
	f, err := os.Open(outPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(2)
	switch {
	case bytes.Equal(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("reading gzip archive %s: %w", outPath, err)
		}
		return dest, writeFile(dest, func(w io.Writer) error {
			if _, err := io.Copy(w, zr); err != nil {
				return fmt.Errorf("writing %s: %w", dest, err)
			}
			return nil
		})
	case bytes.Equal(magic, []byte("#!")):
		return dest, writeFile(dest, func(w io.Writer) error {
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, outPath)
			cmd.Stdout, cmd.Stderr = w, &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("running stream script %s: %w: %s", outPath, err, bytes.TrimSpace(stderr.Bytes()))
			}
			return nil
		})
	default:
		return outPath, nil
	}
}

// writeFile creates dest, never through a link, and has write fill it.
func writeFile(dest string, write func(io.Writer) error) error {
	out, err := safefile.Create(dest)
	if err != nil {
		return err
	}
	if err := write(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ReadImage reads a docker-archive as an image with OCI media types, its
// layers gzipped into a layer cache in the directory "layers" beside the
// archive.
func ReadImage(ctx context.Context, archive string) (v1.Image, error) {
	c, err := newLayerCache(filepath.Join(filepath.Dir(archive), "layers"), Gzip, runtime.NumCPU())
	if err != nil {
		return nil, err
	}
	return c.archiveImage(ctx, archive)
}

// archiveImage reads a docker-archive as an image with OCI media types and
// compresses each layer the cache does not hold yet, so the image's digest
// is known when it returns. The config is kept byte for byte as Nix wrote
// it, so the same archive always gives the same digest; only the manifest
// and layer media types change.
func (c *layerCache) archiveImage(ctx context.Context, archive string) (v1.Image, error) {
	docker, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		return nil, fmt.Errorf("reading docker-archive %s: %w", archive, err)
	}
	config, err := docker.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading docker-archive %s: %w", archive, err)
	}
	layers, err := docker.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading docker-archive %s: %w", archive, err)
	}
	stored := make([]v1.Layer, len(layers))
	for i, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("reading docker-archive %s: %w", archive, err)
		}
		if stored[i], err = c.knownLayer(ctx, diffID, l.Uncompressed); err != nil {
			return nil, fmt.Errorf("reading docker-archive %s: %w", archive, err)
		}
	}
	return newOCIImage(config, stored, c.compression.mediaType())
}

// ociImage is an image with OCI media types whose layers are the cached
// ones themselves: go-containerregistry's generic layer would read a
// layer's uncompressed bytes by decompressing the cached file, where the
// store or the archive has them as they are.
type ociImage struct {
	v1.Image
	layers []v1.Layer
}

func newOCIImage(config []byte, layers []v1.Layer, layerType types.MediaType) (*ociImage, error) {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: v1.Descriptor{
			MediaType: types.OCIConfigJSON,
			Size:      int64(len(config)),
			Digest:    mustSHA256(config),
		},
	}
	for _, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: layerType, Size: size, Digest: d})
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	img, err := partial.CompressedToImage(&ociCore{config: config, manifest: manifest, layers: layers})
	if err != nil {
		return nil, err
	}
	return &ociImage{Image: img, layers: layers}, nil
}

func (i *ociImage) Layers() ([]v1.Layer, error) { return i.layers, nil }

func (i *ociImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if d, _ := l.Digest(); d == h {
			return l, nil
		}
	}
	return i.Image.LayerByDigest(h)
}

func (i *ociImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if d, _ := l.DiffID(); d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with diff ID %s", h)
}

// ociCore is the raw config and manifest of an ociImage.
type ociCore struct {
	config   []byte
	manifest []byte
	layers   []v1.Layer
}

func (c *ociCore) RawConfigFile() ([]byte, error)      { return c.config, nil }
func (c *ociCore) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (c *ociCore) RawManifest() ([]byte, error)        { return c.manifest, nil }
func (c *ociCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == mustSHA256(c.config) {
		return partial.ConfigLayer(c)
	}
	for _, l := range c.layers {
		if d, _ := l.Digest(); d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with digest %s", h)
}

// CheckPlatform returns an error unless the image was built for system.
func CheckPlatform(img v1.Image, system System) error {
	want, err := system.Platform()
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading image config: %w", err)
	}
	if cf.OS != want.OS || cf.Architecture != want.Architecture {
		return fmt.Errorf("image platform is %s/%s, want %s/%s for %s: the flake built the wrong architecture", cf.OS, cf.Architecture, want.OS, want.Architecture, system)
	}
	return nil
}

func mustSHA256(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
