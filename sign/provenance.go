package sign

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/common"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
	"github.com/sigstore/cosign/v2/pkg/oci"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/internal/redact"
	"github.com/nothingnesses/agent-images/record"
)

// PredicateSLSAProvenance is the in-toto predicate type of SLSA v1
// provenance, the one `cosign verify-attestation --type slsaprovenance1`
// selects.
const PredicateSLSAProvenance = slsa1.PredicateSLSAProvenance

// BuildType names how an agent image is built: `nix build` of one flake
// output, loaded as an image and pushed by the release tool.
const BuildType = "https://github.com/nothingnesses/agent-images/release/v1"

var gitCommit = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// provenance is the SLSA v1 predicate of one per-arch image: who built it
// (builderID, and the job run invocation names when known), from which
// commit, with which locked flake inputs, and which derivation.
func provenance(src Source, builderID, invocation string, img *record.Image, version string) slsa1.ProvenancePredicate {
	external := map[string]any{"agent": img.Agent, "version": version, "platform": img.Platform.String()}
	if src.Repository != "" {
		external["repository"] = src.Repository
	}
	if src.Commit != "" {
		external["commit"] = src.Commit
	}
	var internal map[string]any
	if img.DrvPath != "" {
		internal = map[string]any{"derivation": img.DrvPath}
	}
	var deps []slsa1.ResourceDescriptor
	if src.Repository != "" || src.Commit != "" {
		deps = append(deps, revision("source", src.Repository, src.Commit))
	}
	for _, n := range slices.Sorted(maps.Keys(src.FlakeInputs)) {
		deps = append(deps, flakeInput(n, src.FlakeInputs[n]))
	}
	if img.DrvPath != "" {
		deps = append(deps, slsa1.ResourceDescriptor{Name: "derivation", URI: "file://" + img.DrvPath})
	}
	run := slsa1.ProvenanceRunDetails{Builder: slsa1.Builder{ID: builderID}}
	if invocation != "" {
		run.BuildMetadata = slsa1.BuildMetadata{InvocationID: invocation}
	}
	return slsa1.ProvenancePredicate{
		BuildDefinition: slsa1.ProvenanceBuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   external,
			InternalParameters:   internal,
			ResolvedDependencies: deps,
		},
		RunDetails: run,
	}
}

// flakeInput describes a flake input by what was fetched (see FlakeInputs).
func flakeInput(name string, in FlakeInput) slsa1.ResourceDescriptor {
	d := revision("flake-input:"+name, "", in.Rev)
	for k, v := range map[string]string{"narHash": in.NarHash, "override": in.Override} {
		if v == "" {
			continue
		}
		if d.Annotations == nil {
			d.Annotations = map[string]any{}
		}
		d.Annotations[k] = v
	}
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

// Built is what a per-arch image's provenance must say for a release to
// take the image as its own: the derivation this release evaluated, and
// for a part a merge accepts the commit and platform too. An empty field
// is not checked. Annotations on an index say the same, but anyone who
// can push can write them; the provenance is signed.
type Built struct {
	Derivation string
	Commit     string
	Platform   string
}

func (want Built) check(got Built) error {
	switch {
	case want.Derivation != "" && got.Derivation != want.Derivation:
		return fmt.Errorf("its signed provenance says it was built from %q, this release evaluates %s", got.Derivation, want.Derivation)
	case want.Commit != "" && got.Commit != want.Commit:
		return fmt.Errorf("its signed provenance says commit %q, this release is of %s", got.Commit, want.Commit)
	case want.Platform != "" && got.Platform != want.Platform:
		return fmt.Errorf("its signed provenance says platform %q, want %s", got.Platform, want.Platform)
	}
	return nil
}

// provenanceOf reads what a provenance attestation (a DSSE envelope of an
// in-toto statement, as SignImage stores it) says of the build.
func provenanceOf(att oci.Signature) (Built, error) {
	st, err := statementOf(att)
	if err != nil {
		return Built{}, err
	}
	var pred struct {
		BuildDefinition struct {
			ExternalParameters struct{ Commit, Platform string }
			InternalParameters struct{ Derivation string }
		}
	}
	if err := json.Unmarshal(st.Predicate, &pred); err != nil {
		return Built{}, fmt.Errorf("not a SLSA v1 provenance: %w", err)
	}
	bd := pred.BuildDefinition
	return Built{Derivation: bd.InternalParameters.Derivation, Commit: bd.ExternalParameters.Commit, Platform: bd.ExternalParameters.Platform}, nil
}

// FlakeInput is one direct input of the flake, as the provenance records
// it: by what Nix fetched, never by the reference it was fetched from.
type FlakeInput struct {
	// Rev is the git revision Nix locked (git and GitHub inputs).
	Rev string
	// NarHash is Nix's hash of the input's tree (sha256-<base64>).
	NarHash string
	// Override is the public form (redact.FlakeRef) of the
	// --override-input that replaced the input: scheme, host and path of a
	// URL, only the type of a local path; empty when not overridden.
	Override string
}

// FlakeInputs pins each direct input of a flake from locked, how Nix
// locked its inputs with the overrides applied (flake.Metadata.Inputs), so
// that an overridden input, whose reference can hold a token, a query or a
// local path, is pinned by what Nix fetched plus the reference's public
// form; one the lock does not pin, by that public form only.
func FlakeInputs(locked map[string]flake.LockedInput, overrides map[string]string) map[string]FlakeInput {
	out := map[string]FlakeInput{}
	for path, in := range locked {
		if !strings.Contains(path, "/") {
			out[path] = FlakeInput{Rev: in.Rev, NarHash: in.NarHash}
		}
	}
	for input, ref := range overrides {
		in := out[input]
		in.Override = redact.FlakeRef(ref)
		out[input] = in
	}
	return out
}
