package changes

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/internal/pullsize"
	"github.com/nothingnesses/agent-images/sign"
)

// versionAnnotation is where the index records the agent's version.
const versionAnnotation = "org.opencontainers.image.version"

// The in-toto predicate types of the attestations a comparison reads: the
// CycloneDX SBOM and the SLSA v1 provenance sign attaches to every image.
const (
	predicateCycloneDX      = "https://cyclonedx.org/bom"
	predicateSLSAProvenance = "https://slsa.dev/provenance/v1"
)

// read completes rel from the registry where the caller held less (see
// Release), then reads what each image's attestations say, a few images at
// a time. The caller's images are left as they were.
func read(ctx context.Context, rel Release, o Options) (Release, error) {
	sized := rel.Images != nil
	if sized {
		rel.Images = slices.Clone(rel.Images)
	} else if err := readIndex(ctx, &rel, o.Remote); err != nil {
		return rel, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range rel.Images {
		im := &rel.Images[i]
		d := rel.Ref.Context().Digest(im.Digest.String())
		g.Go(func() error {
			// Each goroutine its own context, appended to a clipped slice
			// so that none writes into a shared backing array.
			remoteOpts := append(slices.Clip(o.Remote), remote.WithContext(gctx))
			if !sized {
				desc, err := remote.Get(d, remoteOpts...)
				if err == nil {
					im.Size, err = pullsize.OfManifest(desc.Manifest)
				}
				if err != nil {
					return fmt.Errorf("reading %s (%s): %w", d, im.Platform.String(), err)
				}
			}
			if im.Attestations == nil {
				var err error
				if im.Attestations, err = attestations(gctx, d, o.Verifier, remoteOpts); err != nil {
					return err
				}
			}
			return im.take(d)
		})
	}
	err := g.Wait()
	slices.SortFunc(rel.Images, func(a, b Image) int { return strings.Compare(a.Platform.String(), b.Platform.String()) })
	return rel, err
}

// readIndex fills in the version and images of the index (or single image
// manifest) rel.Ref.
func readIndex(ctx context.Context, rel *Release, remoteOpts []remote.Option) error {
	d := rel.Ref
	desc, err := remote.Get(d, append(slices.Clip(remoteOpts), remote.WithContext(ctx))...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	switch {
	case desc.MediaType.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return fmt.Errorf("reading index %s: %w", d, err)
		}
		rel.Version, rel.Images = im.Annotations[versionAnnotation], []Image{}
		for _, m := range im.Manifests {
			// Build tools list attestations as unknown/unknown entries:
			// they are not images of the release.
			if m.Platform != nil && m.Platform.OS != "unknown" {
				rel.Images = append(rel.Images, Image{Platform: *m.Platform, Digest: m.Digest})
			}
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return fmt.Errorf("reading image %s: %w", d, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return fmt.Errorf("reading the config of %s: %w", d, err)
		}
		rel.Version = cfg.Config.Labels[versionAnnotation]
		rel.Images = []Image{{Platform: v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, Digest: desc.Digest}}
	default:
		return fmt.Errorf("%s is a %s, not an image index or manifest: name an agent's release", d, desc.MediaType)
	}
	return nil
}

// take records what the attestations of im, which is d, say.
func (im *Image) take(d name.Digest) error {
	for _, a := range im.Attestations {
		payload, err := a.Payload()
		var st statement
		if err == nil {
			st, err = decodeStatement(payload)
		}
		if err != nil {
			return fmt.Errorf("reading an attestation of %s: %w", d, err)
		}
		// Unverified attestations are taken only when they claim this very
		// image; verified ones were checked for that already.
		if !st.names(d) {
			continue
		}
		// A later attestation of a type replaces an earlier one: cosign
		// appends, so the last is the newest.
		switch st.PredicateType {
		case predicateCycloneDX:
			if im.sbom, err = parseCycloneDX(st.Predicate); err != nil {
				return fmt.Errorf("reading the SBOM of %s: %w", d, err)
			}
		case predicateSLSAProvenance:
			if im.prov, err = parseProvenance(st.Predicate); err != nil {
				return fmt.Errorf("reading the provenance of %s: %w", d, err)
			}
		}
	}
	return nil
}

// attestations are d's attestations: those v verifies when it is set,
// otherwise all the registry holds.
func attestations(ctx context.Context, d name.Digest, v *sign.AttestationVerifier, remoteOpts []remote.Option) ([]oci.Signature, error) {
	if v != nil {
		return v.Attestations(ctx, d)
	}
	// SignedUnknown reads the attestation tag alone, not d's manifest too.
	atts, err := ociremote.SignedUnknown(d, ociremote.WithRemoteOptions(remoteOpts...)).Attestations()
	var list []oci.Signature
	if err == nil {
		list, err = atts.Get()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the attestations of %s: %w", d, err)
	}
	return list, nil
}
