package sign

import (
	"regexp"
	"sort"
	"strings"

	"github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/common"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
)

// PredicateSLSAProvenance is the in-toto predicate type of SLSA v1
// provenance, the one `cosign verify-attestation --type slsaprovenance1`
// selects.
const PredicateSLSAProvenance = slsa1.PredicateSLSAProvenance

// BuildType names how an agent image is built: `nix build` of one flake
// output, loaded as an image and pushed by the release tool.
const BuildType = "https://github.com/nothingnesses/agent-images/release/v1"

var gitCommit = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// Provenance is the SLSA v1 predicate of one per-arch image: who built it,
// from which commit, with which locked flake inputs, and which derivation.
func Provenance(r Request, p Platform) slsa1.ProvenancePredicate {
	external := map[string]any{
		"agent":    r.Agent.Attr,
		"version":  r.Agent.Version,
		"platform": p.Platform.String(),
	}
	if r.Source.Repository != "" {
		external["repository"] = r.Source.Repository
	}
	if r.Source.Commit != "" {
		external["commit"] = r.Source.Commit
	}
	var internal map[string]any
	if p.Derivation != "" {
		internal = map[string]any{"derivation": p.Derivation}
	}
	var deps []slsa1.ResourceDescriptor
	if r.Source.Repository != "" || r.Source.Commit != "" {
		deps = append(deps, revision("source", r.Source.Repository, r.Source.Commit))
	}
	names := make([]string, 0, len(r.Source.FlakeInputs))
	for n := range r.Source.FlakeInputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		deps = append(deps, flakeInput(n, r.Source.FlakeInputs[n]))
	}
	if p.Derivation != "" {
		deps = append(deps, slsa1.ResourceDescriptor{Name: "derivation", URI: "file://" + p.Derivation})
	}
	builder := r.BuilderID
	if builder == "" {
		builder = "local"
	}
	return slsa1.ProvenancePredicate{
		BuildDefinition: slsa1.ProvenanceBuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   external,
			InternalParameters:   internal,
			ResolvedDependencies: deps,
		},
		RunDetails: slsa1.ProvenanceRunDetails{Builder: slsa1.Builder{ID: builder}},
	}
}

// flakeInput describes a flake input by what was fetched: its git revision
// as a digest, its NAR hash, and whether --override-input replaced it (with
// the reference's public form; see FlakeInputs for the rule).
func flakeInput(name string, in FlakeInput) slsa1.ResourceDescriptor {
	d := revision("flake-input:"+name, "", in.Rev)
	add := func(k, v string) {
		if v == "" {
			return
		}
		if d.Annotations == nil {
			d.Annotations = map[string]any{}
		}
		d.Annotations[k] = v
	}
	add("narHash", in.NarHash)
	add("override", in.Override)
	return d
}

// revision describes a source at a revision: a git commit as a digest, any
// other kind of revision as an annotation, since a digest must be a hash.
func revision(name, uri, rev string) slsa1.ResourceDescriptor {
	d := slsa1.ResourceDescriptor{Name: name}
	if uri != "" {
		d.URI = "git+" + strings.TrimSuffix(uri, "/")
		if rev != "" {
			d.URI += "@" + rev
		}
	}
	switch {
	case gitCommit.MatchString(rev):
		d.Digest = common.DigestSet{"gitCommit": rev}
	case rev != "":
		d.Annotations = map[string]any{"revision": rev}
	}
	return d
}
