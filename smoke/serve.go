package smoke

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// serve runs a registry on loopback that holds img under repo:tag, its
// blobs read from img itself as they are asked for, and calls pull with the
// image's reference there. Podman pulls only the layers its storage lacks,
// compressed, straight from where the image keeps them; a docker-archive
// has every layer written out again, uncompressed, for every image.
func serve(ctx context.Context, img v1.Image, repo, tag string, pull func(ref name.Tag) error) error {
	blobs, err := blobsOf(img)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.WithBlobHandler(blobs), registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(l)
	defer srv.Close()
	ref, err := name.NewTag(l.Addr().String()+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return err
	}
	// Only the manifest is sent: the blobs are served from img.
	if err := remote.Put(ref, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("serving %s: %w", ref, err)
	}
	return pull(ref)
}

// imageBlobs are one image's blobs, by digest.
type imageBlobs map[v1.Hash]v1.Layer

func blobsOf(img v1.Image) (imageBlobs, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cfg, err := partial.ConfigLayer(img)
	if err != nil {
		return nil, err
	}
	b := imageBlobs{}
	for _, l := range append(layers, cfg) {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		b[d] = l
	}
	return b, nil
}

func (b imageBlobs) Get(_ context.Context, _ string, d v1.Hash) (io.ReadCloser, error) {
	if l, ok := b[d]; ok {
		return l.Compressed()
	}
	return nil, registry.ErrNotFound
}

func (b imageBlobs) Stat(_ context.Context, _ string, d v1.Hash) (int64, error) {
	if l, ok := b[d]; ok {
		return l.Size()
	}
	return 0, registry.ErrNotFound
}
