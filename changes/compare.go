package changes

import (
	"fmt"
	"path"
	"sort"

	"github.com/nothingnesses/agent-images/record"
)

// compare is the whole comparison, on what read found: no I/O, so that it
// is tested on hand-built releases.
func compare(before, after *Release, verified bool, threshold *float64) *record.Changes {
	r := &record.Changes{
		Agent:         agentName(after),
		From:          describe(before),
		To:            describe(after),
		Verified:      verified,
		SizeThreshold: threshold,
		Platforms:     []record.PlatformChange{},
	}
	befores, afters := before.byPlatform(), after.byPlatform()
	var platforms []string
	for p := range befores {
		platforms = append(platforms, p)
	}
	for p := range afters {
		if befores[p] == nil {
			platforms = append(platforms, p)
		}
	}
	sort.Strings(platforms)
	for _, p := range platforms {
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
			switch {
			case b.sbom == nil:
				r.Notes = append(r.Notes, fmt.Sprintf("%s: %s has no SBOM attestation, so its store paths are not compared", p, r.From.Label()))
			case a.sbom == nil:
				r.Notes = append(r.Notes, fmt.Sprintf("%s: %s has no SBOM attestation, so its store paths are not compared", p, r.To.Label()))
			default:
				c.StorePathsCompared = true
				c.Added, c.Removed = only(a.sbom.paths, b.sbom.paths), only(b.sbom.paths, a.sbom.paths)
			}
		}
		r.Platforms = append(r.Platforms, c)
	}
	fromInputs, fromOK := inputsOf(before)
	toInputs, toOK := inputsOf(after)
	switch {
	case !fromOK:
		r.Notes = append(r.Notes, fmt.Sprintf("%s has no provenance attestation, so flake inputs are not compared", r.From.Label()))
	case !toOK:
		r.Notes = append(r.Notes, fmt.Sprintf("%s has no provenance attestation, so flake inputs are not compared", r.To.Label()))
	default:
		r.InputsCompared = true
		r.Inputs = diffInputs(fromInputs, toInputs)
	}
	return r
}

func describe(rel *Release) record.Compared {
	return record.Compared{
		Repository: rel.Ref.Context().Name(),
		Digest:     rel.Ref.DigestStr(),
		Tag:        rel.Tag,
		Version:    versionOf(rel),
	}
}

// agentName is the repository's last path element: releases go to
// <registry>/<agent>.
func agentName(rel *Release) string { return path.Base(rel.Ref.Context().RepositoryStr()) }

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

// only lists, sorted, the store paths of list that are not in other.
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
	sortPaths(out)
	return out
}

// sortPaths orders store paths by name, then version, then path, so that
// an updated package's removed and added entries read side by side.
func sortPaths(list []record.StorePath) {
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Path < b.Path
	})
}

// diffInputs lists the inputs whose pin differs, by name.
func diffInputs(before, after map[string]record.Pin) []record.InputChange {
	names := map[string]bool{}
	for n := range before {
		names[n] = true
	}
	for n := range after {
		names[n] = true
	}
	var out []record.InputChange
	for n := range names {
		if before[n] != after[n] {
			out = append(out, record.InputChange{Name: n, From: before[n], To: after[n]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
