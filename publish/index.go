// Package publish owns where built images go and in what order: each
// per-arch image by digest, then the multi-arch index, then (after the
// caller's hook, where signing happens) the tags, last. It writes the same
// result to a registry or to a local OCI image layout, and never uploads a
// blob the destination already has.
package publish

import (
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Part is one per-arch image of an agent.
type Part struct {
	Platform v1.Platform
	Image    v1.Image
}

// Release is everything published for one agent.
type Release struct {
	Agent string
	Parts []Part
	// Annotations go on the index (source, revision, version, title).
	Annotations map[string]string
	// Tags are moved to the index last.
	Tags []string
}

// Annotation keys used on every index.
const (
	AnnotationSource   = "org.opencontainers.image.source"
	AnnotationRevision = "org.opencontainers.image.revision"
	AnnotationVersion  = "org.opencontainers.image.version"
	AnnotationTitle    = "org.opencontainers.image.title"
	AnnotationRefName  = "org.opencontainers.image.ref.name"
)

// Index assembles the OCI index of parts. Parts are ordered by platform so
// that the same images always give the same index digest, whichever order
// they were built or fetched in.
func Index(parts []Part, annotations map[string]string) (v1.ImageIndex, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("an index needs at least one image")
	}
	sorted := append([]Part(nil), parts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Platform.String() < sorted[j].Platform.String() })
	seen := map[string]bool{}
	adds := make([]mutate.IndexAddendum, 0, len(sorted))
	for _, p := range sorted {
		if seen[p.Platform.String()] {
			return nil, fmt.Errorf("two images for platform %s in one index", p.Platform)
		}
		seen[p.Platform.String()] = true
		mt, err := p.Image.MediaType()
		if err != nil {
			return nil, err
		}
		platform := p.Platform
		adds = append(adds, mutate.IndexAddendum{
			Add:        plainImage{p.Image},
			Descriptor: v1.Descriptor{MediaType: mt, Platform: &platform},
		})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
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
