// Package publish owns where built images go and in what order: Put sends
// each per-arch image by digest, then the multi-arch index; the caller signs
// what was put; MoveTags then moves the tags, last, and never backwards. A
// Registry and a Layout (a local OCI image layout) are the two Publishers;
// they share that order and differ only in where manifests and tags live.
// Neither writes the caller's records: each returns what it did.
package publish

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/tags"
)

// Release is everything published for one agent.
type Release struct {
	Agent string
	// Images are the per-arch images; each must have its Image.
	Images []*record.Image
	// Version and Created order releases: Created is the source commit's
	// time. Both are recorded on the index, and a tag that is not Owned
	// never moves to an index older than the one it points at.
	Version string
	Created time.Time
	// Annotations go on the index over what the images' configs say of
	// them (see indexAnnotations): the source, the revision, the title.
	Annotations map[string]string
	// Tags are moved to the index last.
	Tags []tags.Tag
	// AllowRollback moves every tag even to an older index: a deliberate revert.
	AllowRollback bool
	// Ours says whether the index at d is one of this publisher's
	// releases (its signer signed it). Only such an index's ordering key
	// keeps a shared tag from moving: the key is written on the index, and
	// anyone who can push can write one that is newer than every release.
	// Nil takes every index as ours (a release published unsigned).
	Ours func(ctx context.Context, d name.Digest) bool
	// Reuse is the published index that stands for Images unchanged (see
	// Published.Matches): nothing is assembled or pushed, and Images need
	// no Image; only the tags move to it, ordered by its own key.
	Reuse *Published
}

// Moving are the tags a release moves to its index: all of Tags onto an
// index it assembled; onto a reused one only those not Built, since the
// date and sha- tags stay with the run that built it.
func (rel Release) Moving() []tags.Tag {
	if rel.Reuse == nil {
		return rel.Tags
	}
	return slices.DeleteFunc(slices.Clone(rel.Tags), func(t tags.Tag) bool { return t.Built })
}

// Annotation keys used on every index, and on its entries.
const (
	AnnotationSource   = "org.opencontainers.image.source"
	AnnotationRevision = "org.opencontainers.image.revision"
	AnnotationVersion  = "org.opencontainers.image.version"
	AnnotationCreated  = "org.opencontainers.image.created"
	AnnotationTitle    = "org.opencontainers.image.title"
	AnnotationRefName  = "org.opencontainers.image.ref.name"
	// AnnotationDerivation is on each platform's entry of the index: the Nix
	// derivation that built that image, so that a later run can tell from
	// the index alone whether it would build the same thing.
	AnnotationDerivation = "io.github.nothingnesses.agent-images.derivation"
)

// Index assembles the OCI index of rel. Images are ordered by platform so
// that the same images always give the same index digest, whichever order
// they were built or fetched in.
func Index(rel Release) (v1.ImageIndex, error) {
	if len(rel.Images) == 0 {
		return nil, fmt.Errorf("an index needs at least one image")
	}
	sorted := slices.SortedFunc(slices.Values(rel.Images), func(a, b *record.Image) int {
		return strings.Compare(a.Platform.String(), b.Platform.String())
	})
	adds := make([]mutate.IndexAddendum, 0, len(sorted))
	for i, img := range sorted {
		if i > 0 && sorted[i-1].Platform.String() == img.Platform.String() {
			return nil, fmt.Errorf("two images for platform %s in one index", img.Platform)
		}
		if img.Image == nil {
			return nil, fmt.Errorf("%s has no image to publish", img)
		}
		mt, err := img.Image.MediaType()
		if err != nil {
			return nil, err
		}
		platform := img.Platform
		desc := v1.Descriptor{MediaType: mt, Platform: &platform}
		if img.DrvPath != "" {
			desc.Annotations = map[string]string{AnnotationDerivation: img.DrvPath}
		}
		adds = append(adds, mutate.IndexAddendum{Add: plainImage{img.Image}, Descriptor: desc})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	annotations, err := indexAnnotations(rel)
	if err != nil {
		return nil, err
	}
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// plainImage marks an image as an image, not an artifact: without it the
// index entry would carry the config media type as an artifactType, which
// the image spec reserves for artifacts.
type plainImage struct{ v1.Image }

func (plainImage) ArtifactType() (string, error) { return "", nil }
