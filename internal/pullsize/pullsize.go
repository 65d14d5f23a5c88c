// Package pullsize is the one measure of an image's size that reports,
// change reports and the benchmark give: what pulling it downloads.
package pullsize

import (
	"bytes"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Of is what pulling img downloads: its manifest, config and layers, as
// compressed in the registry.
func Of(img v1.Image) (int64, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	return OfManifest(raw)
}

// OfManifest is Of for an image known only by its raw manifest.
func OfManifest(raw []byte) (int64, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	total := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	return total, nil
}
