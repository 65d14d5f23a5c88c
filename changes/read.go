package changes

import (
	"context"
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/internal/pullsize"
)

// versionAnnotation is where the index records the agent's version.
const versionAnnotation = "org.opencontainers.image.version"

// The in-toto predicate types of the attestations a comparison reads: the
// CycloneDX SBOM and the SLSA v1 provenance sign attaches to every image.
const (
	predicateCycloneDX      = "https://cyclonedx.org/bom"
	predicateSLSAProvenance = "https://slsa.dev/provenance/v1"
)

// release is one side of a comparison as read from the registry.
type release struct {
	ref     name.Digest
	tag     string
	version string // the index's version annotation
	images  []image
}

// image is one per-arch image and what its attestations say.
type image struct {
	platform string
	digest   name.Digest
	size     int64
	sbom     *sbom       // nil: no SBOM attestation
	prov     *provenance // nil: no provenance attestation
}

// read fetches the index (or single manifest) d, then each per-arch image's
// size and attestations, a few at a time.
func read(ctx context.Context, d name.Digest, o *options) (*release, error) {
	desc, err := remote.Get(d, o.remoteOpts...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d, err)
	}
	rel := &release{ref: d}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("reading index %s: %w", d, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading index %s: %w", d, err)
		}
		rel.version = im.Annotations[versionAnnotation]
		for _, m := range im.Manifests {
			// Build tools list attestations as unknown/unknown entries:
			// they are not images of the release.
			if m.Platform == nil || m.Platform.OS == "unknown" {
				continue
			}
			rel.images = append(rel.images, image{platform: m.Platform.String(), digest: d.Context().Digest(m.Digest.String())})
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("reading image %s: %w", d, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading the config of %s: %w", d, err)
		}
		p := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		rel.version = cfg.Config.Labels[versionAnnotation]
		rel.images = []image{{platform: p.String(), digest: d}}
	default:
		return nil, fmt.Errorf("%s is a %s, not an image index or manifest: name an agent's release", d, desc.MediaType)
	}
	sort.Slice(rel.images, func(i, j int) bool { return rel.images[i].platform < rel.images[j].platform })

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range rel.images {
		g.Go(func() error { return readImage(gctx, &rel.images[i], o) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return rel, nil
}

// readImage fills in one image's size and what its attestations say.
func readImage(ctx context.Context, im *image, o *options) error {
	img, err := remote.Image(im.digest, append(o.remoteOpts, remote.WithContext(ctx))...)
	if err != nil {
		return fmt.Errorf("reading %s (%s): %w", im.digest, im.platform, err)
	}
	if im.size, err = pullsize.Of(img); err != nil {
		return fmt.Errorf("reading %s (%s): %w", im.digest, im.platform, err)
	}
	atts, err := attestations(ctx, im.digest, o)
	if err != nil {
		return err
	}
	for _, a := range atts {
		payload, err := a.Payload()
		if err != nil {
			return fmt.Errorf("reading an attestation of %s: %w", im.digest, err)
		}
		st, err := decodeStatement(payload)
		if err != nil {
			return fmt.Errorf("reading an attestation of %s: %w", im.digest, err)
		}
		// Unverified attestations are taken only when they claim this very
		// image; verified ones were checked for that already.
		if !st.names(im.digest) {
			continue
		}
		// A later attestation of a type replaces an earlier one: cosign
		// appends, so the last is the newest.
		switch st.PredicateType {
		case predicateCycloneDX:
			s, err := parseCycloneDX(st.Predicate)
			if err != nil {
				return fmt.Errorf("reading the SBOM of %s: %w", im.digest, err)
			}
			im.sbom = s
		case predicateSLSAProvenance:
			p, err := parseProvenance(st.Predicate)
			if err != nil {
				return fmt.Errorf("reading the provenance of %s: %w", im.digest, err)
			}
			im.prov = p
		}
	}
	return nil
}

// attestations are d's attestations: verified when a verifier is set,
// otherwise as the registry holds them.
func attestations(ctx context.Context, d name.Digest, o *options) ([]oci.Signature, error) {
	if o.verifier != nil {
		return o.verifier.Attestations(ctx, d)
	}
	ociOpts := []ociremote.Option{ociremote.WithRemoteOptions(append(o.remoteOpts, remote.WithContext(ctx))...)}
	se, err := ociremote.SignedEntity(d, ociOpts...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d, err)
	}
	atts, err := se.Attestations()
	if err != nil {
		return nil, fmt.Errorf("reading the attestations of %s: %w", d, err)
	}
	list, err := atts.Get()
	if err != nil {
		return nil, fmt.Errorf("reading the attestations of %s: %w", d, err)
	}
	return list, nil
}
