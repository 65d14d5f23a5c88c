package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/internal/pullsize"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/tags"
)

// Published is an agent's index as a destination has it under latest: what
// a release holds its evaluated derivations against before it builds
// anything. Reading it is the whole cost of an unchanged agent: the tag, the
// index, and each image's manifest (the images of an index can be lost
// while the index stays, and an index whose image is gone is not published).
type Published struct {
	Index v1.Hash
	Size  int64
	// Ref is the index by digest in a registry; zero in a layout.
	Ref name.Digest
	// Key is the index's ordering key, as recorded on it.
	Key    tags.Key
	Images []PublishedImage
}

// PublishedImage is one per-arch entry of a published index.
type PublishedImage struct {
	Platform v1.Platform
	Digest   v1.Hash
	// Ref is the image by digest in a registry; zero in a layout.
	Ref name.Digest
	// Size is the bytes of its manifest, config and layers; zero when it is
	// not Present.
	Size int64
	// Derivation is the index entry's AnnotationDerivation.
	Derivation string
	// Present is false when the destination has lost the image's manifest
	// or a blob it names: an image that cannot be pulled.
	Present bool
}

// readPublished reads the index latest points at in s; nil when there is
// no latest tag, or it names something that is not an index.
func readPublished(ctx context.Context, s store) (*Published, error) {
	current, err := s.current(ctx, []string{"latest"})
	if err != nil {
		return nil, err
	}
	d, ok := current["latest"]
	if !ok {
		return nil, nil
	}
	raw, err := s.manifest(ctx, d)
	if err != nil || raw == nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil || !im.MediaType.IsIndex() {
		// Not an index of ours (an image pushed by hand): build.
		return nil, nil
	}
	p := &Published{Index: d, Size: int64(len(raw)), Ref: s.ref(d)}
	if p.Key, err = keyOf(s, d, im.Annotations); err != nil {
		return nil, err
	}
	// The images, and each one's blobs, are checked at once: on a rerun,
	// where nothing is built, these checks are most of what it waits for.
	p.Images = make([]PublishedImage, len(im.Manifests))
	g, gctx := errgroup.WithContext(ctx)
	for i, desc := range im.Manifests {
		g.Go(func() (err error) {
			img := &p.Images[i]
			*img = PublishedImage{Digest: desc.Digest, Ref: s.ref(desc.Digest), Derivation: desc.Annotations[AnnotationDerivation]}
			if desc.Platform != nil {
				img.Platform = *desc.Platform
			}
			var raw []byte
			if raw, img.Present, err = complete(gctx, s, desc.Digest); err != nil || !img.Present {
				return err
			}
			if img.Size, err = pullsize.OfManifest(raw); err != nil {
				return fmt.Errorf("reading %s in %s: %w", desc.Digest, s.where(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return p, nil
}

// ErrChanged is why a published index cannot stand for images: they were
// evaluated to other derivations, for other platforms, or it is incomplete.
var ErrChanged = errors.New("changed")

// Matches says whether p is exactly what images would publish: the same
// platforms, each built from the same derivation, each still there. The
// error, wrapping ErrChanged, names the first difference.
func (p *Published) Matches(images []*record.Image) error {
	if len(images) != len(p.Images) {
		return fmt.Errorf("%w: %s lists %d platforms, this release has %d", ErrChanged, p.Index, len(p.Images), len(images))
	}
	for _, img := range images {
		pi, ok := p.Image(img.Platform)
		switch {
		case !ok:
			return fmt.Errorf("%w: %s has no %s image", ErrChanged, p.Index, img.Platform)
		case pi.Derivation == "" || pi.Derivation != img.DrvPath:
			return fmt.Errorf("%w: %s was built from %q, this release evaluates %s", ErrChanged, img.Platform, pi.Derivation, img.DrvPath)
		case !pi.Present:
			return fmt.Errorf("%w: its %s image %s is gone", ErrChanged, img.Platform, pi.Digest)
		}
	}
	return nil
}

// Image is p's image for platform pl.
func (p *Published) Image(pl v1.Platform) (PublishedImage, bool) {
	for _, pi := range p.Images {
		if pi.Platform.Equals(pl) {
			return pi, true
		}
	}
	return PublishedImage{}, false
}
