package changes

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/nothingnesses/agent-images/record"
)

// compare is the whole comparison, on what read found: no I/O, so that it
// is tested on hand-built releases.
func compare(before, after *Release, verified bool, threshold *float64) *record.Changes {
	r := &record.Changes{
		// Releases go to <registry>/<agent>.
		Agent:         path.Base(after.Ref.Context().RepositoryStr()),
		From:          describe(before),
		To:            describe(after),
		Verified:      verified,
		SizeThreshold: threshold,
		Platforms:     []record.PlatformChange{},
	}
	befores, afters := before.byPlatform(), after.byPlatform()
	for _, p := range union(befores, afters) {
		c, b, a := record.PlatformChange{Platform: p}, befores[p], afters[p]
		if b != nil {
			c.From = &record.ImageSize{Digest: b.Digest.String(), Size: b.Size}
		}
		if a != nil {
			c.To = &record.ImageSize{Digest: a.Digest.String(), Size: a.Size}
		}
		if b != nil && a != nil {
			c.SizeDelta = a.Size - b.Size
			if b.Size > 0 {
				c.SizeGrowth = float64(c.SizeDelta) / float64(b.Size)
			}
			c.OverThreshold = threshold != nil && c.SizeDelta > 0 && c.SizeGrowth > *threshold
			if lacking := lacking(r, b.sbom == nil, a.sbom == nil); lacking != "" {
				r.Notes = append(r.Notes, fmt.Sprintf("%s: %s has no SBOM attestation, so its store paths are not compared", p, lacking))
			} else {
				c.StorePathsCompared = true
				c.Added, c.Removed = only(a.sbom.paths, b.sbom.paths), only(b.sbom.paths, a.sbom.paths)
			}
		}
		r.Platforms = append(r.Platforms, c)
	}
	fromInputs, fromOK := inputsOf(before)
	toInputs, toOK := inputsOf(after)
	if lacking := lacking(r, !fromOK, !toOK); lacking != "" {
		r.Notes = append(r.Notes, fmt.Sprintf("%s has no provenance attestation, so flake inputs are not compared", lacking))
	} else {
		r.InputsCompared = true
		for _, n := range union(fromInputs, toInputs) {
			if fromInputs[n] != toInputs[n] {
				r.Inputs = append(r.Inputs, record.InputChange{Name: n, From: fromInputs[n], To: toInputs[n]})
			}
		}
	}
	return r
}

// lacking labels the side of r that lacks an attestation, from first; ""
// when neither does.
func lacking(r *record.Changes, from, to bool) string {
	switch {
	case from:
		return r.From.Label()
	case to:
		return r.To.Label()
	}
	return ""
}

// union is the keys of a and b, sorted.
func union[V any](a, b map[string]V) []string {
	keys := slices.AppendSeq(slices.Collect(maps.Keys(a)), maps.Keys(b))
	slices.Sort(keys)
	return slices.Compact(keys)
}

func describe(rel *Release) record.Compared {
	return record.Compared{
		Repository: rel.Ref.Context().Name(),
		Digest:     rel.Ref.DigestStr(),
		Tag:        rel.Tag,
		Version:    versionOf(rel),
	}
}

// versionOf is the index's version annotation, else what the provenance or
// the SBOM of the first image that has one says.
func versionOf(rel *Release) string {
	if rel.Version != "" {
		return rel.Version
	}
	for _, im := range rel.Images {
		if im.prov != nil && im.prov.version != "" {
			return im.prov.version
		}
		if im.sbom != nil && im.sbom.agentVersion != "" {
			return im.sbom.agentVersion
		}
	}
	return ""
}

func (rel *Release) byPlatform() map[string]*Image {
	m := make(map[string]*Image, len(rel.Images))
	for i := range rel.Images {
		m[rel.Images[i].Platform.String()] = &rel.Images[i]
	}
	return m
}

// inputsOf are the flake inputs of a release. Every image of a release is
// built from the same flake lock, so the first image with a provenance
// speaks for all.
func inputsOf(rel *Release) (map[string]record.Pin, bool) {
	for _, im := range rel.Images {
		if im.prov != nil {
			return im.prov.inputs, true
		}
	}
	return nil, false
}

// only lists the store paths of list that are not in other, by name, then
// version, then path, so that an updated package's removed and added
// entries read side by side.
func only(list, other []record.StorePath) []record.StorePath {
	in := make(map[string]bool, len(other))
	for _, s := range other {
		in[s.Key()] = true
	}
	var out []record.StorePath
	for _, s := range list {
		if !in[s.Key()] {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b record.StorePath) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version), strings.Compare(a.Path, b.Path))
	})
	return out
}
