package changes

import (
	"fmt"
	"github.com/nothingnesses/agent-images/record"
	"sort"
)

// compare is the whole comparison, on what read found: no I/O, so that it
// is tested on hand-built releases.
func compare(before, after *release, verified bool, threshold *float64) *record.Changes {
	r := &record.Changes{
		Agent:         agentName(after),
		From:          describe(before),
		To:            describe(after),
		Verified:      verified,
		SizeThreshold: threshold,
		Platforms:     []record.PlatformChange{},
	}
	byPlatform := map[string]*record.PlatformChange{}
	var order []string
	entry := func(p string) *record.PlatformChange {
		if c, ok := byPlatform[p]; ok {
			return c
		}
		byPlatform[p] = &record.PlatformChange{Platform: p}
		order = append(order, p)
		return byPlatform[p]
	}
	for _, im := range before.images {
		entry(im.platform).From = &record.ImageSize{Digest: im.digest.DigestStr(), Size: im.size}
	}
	for _, im := range after.images {
		entry(im.platform).To = &record.ImageSize{Digest: im.digest.DigestStr(), Size: im.size}
	}
	sort.Strings(order)
	for _, p := range order {
		c := byPlatform[p]
		if c.From != nil && c.To != nil {
			c.SizeDelta = c.To.Size - c.From.Size
			if c.From.Size > 0 {
				c.SizeGrowth = float64(c.SizeDelta) / float64(c.From.Size)
			}
			c.OverThreshold = threshold != nil && c.SizeDelta > 0 && c.SizeGrowth > *threshold
			b, a := before.image(p), after.image(p)
			switch {
			case b.sbom == nil:
				r.Notes = append(r.Notes, fmt.Sprintf("%s: %s has no SBOM attestation, so its store paths are not compared", p, describe(before).Label()))
			case a.sbom == nil:
				r.Notes = append(r.Notes, fmt.Sprintf("%s: %s has no SBOM attestation, so its store paths are not compared", p, describe(after).Label()))
			default:
				c.StorePathsCompared = true
				c.Added, c.Removed = diffPaths(b.sbom.paths, a.sbom.paths)
			}
		}
		r.Platforms = append(r.Platforms, *c)
	}
	fromInputs, fromOK := inputsOf(before)
	toInputs, toOK := inputsOf(after)
	switch {
	case !fromOK:
		r.Notes = append(r.Notes, fmt.Sprintf("%s has no provenance attestation, so flake inputs are not compared", describe(before).Label()))
	case !toOK:
		r.Notes = append(r.Notes, fmt.Sprintf("%s has no provenance attestation, so flake inputs are not compared", describe(after).Label()))
	default:
		r.InputsCompared = true
		r.Inputs = diffInputs(fromInputs, toInputs)
	}
	return r
}

func describe(rel *release) record.Compared {
	return record.Compared{
		Repository: rel.ref.Context().Name(),
		Digest:     rel.ref.DigestStr(),
		Tag:        rel.tag,
		Version:    versionOf(rel),
	}
}

// agentName is the repository's last path element: releases go to
// <registry>/<agent>.
func agentName(rel *release) string {
	repo := rel.ref.Context().RepositoryStr()
	for i := len(repo) - 1; i >= 0; i-- {
		if repo[i] == '/' {
			return repo[i+1:]
		}
	}
	return repo
}

// versionOf is the index's version annotation, else what the provenance or
// the SBOM of the first image that has one says.
func versionOf(rel *release) string {
	if rel.version != "" {
		return rel.version
	}
	for _, im := range rel.images {
		if im.prov != nil && im.prov.version != "" {
			return im.prov.version
		}
		if im.sbom != nil && im.sbom.agentVersion != "" {
			return im.sbom.agentVersion
		}
	}
	return ""
}

func (rel *release) image(platform string) *image {
	for i := range rel.images {
		if rel.images[i].platform == platform {
			return &rel.images[i]
		}
	}
	return nil
}

// inputsOf are the flake inputs of a release. Every image of a release is
// built from the same flake lock, so the first image with a provenance
// speaks for all.
func inputsOf(rel *release) (map[string]record.Pin, bool) {
	for _, im := range rel.images {
		if im.prov != nil {
			return im.prov.inputs, true
		}
	}
	return nil, false
}

// diffPaths returns the store paths only in after (added) and only in
// before (removed), each sorted.
func diffPaths(before, after []record.StorePath) (added, removed []record.StorePath) {
	in := func(list []record.StorePath) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, s := range list {
			m[s.Key()] = true
		}
		return m
	}
	had, has := in(before), in(after)
	for _, s := range after {
		if !had[s.Key()] {
			added = append(added, s)
		}
	}
	for _, s := range before {
		if !has[s.Key()] {
			removed = append(removed, s)
		}
	}
	sortPaths(added)
	sortPaths(removed)
	return added, removed
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
