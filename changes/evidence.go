package changes

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/in-toto/in-toto-golang/in_toto"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
	"github.com/package-url/packageurl-go"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
)

// statement is the in-toto statement inside a DSSE envelope, its
// predicate left for the reader of its type.
type statement struct {
	in_toto.StatementHeader
	Predicate json.RawMessage `json:"predicate"`
}

// names reports whether the statement is about the manifest d.
func (s statement) names(d name.Digest) bool {
	alg, hex, _ := strings.Cut(d.DigestStr(), ":")
	for _, sub := range s.Subject {
		if sub.Digest[alg] == hex {
			return true
		}
	}
	return false
}

// decodeStatement opens a DSSE envelope, as cosign stores an attestation.
func decodeStatement(envelope []byte) (statement, error) {
	var e dsse.Envelope
	if err := json.Unmarshal(envelope, &e); err != nil {
		return statement{}, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	body, err := e.DecodeB64Payload()
	if err != nil {
		return statement{}, fmt.Errorf("the DSSE payload is not base64: %w", err)
	}
	var st statement
	if err := json.Unmarshal(body, &st); err != nil {
		return statement{}, fmt.Errorf("the DSSE payload is not an in-toto statement: %w", err)
	}
	return st, nil
}

// sbom is what a CycloneDX document says that a comparison uses.
type sbom struct {
	paths        []record.StorePath // sorted by key
	agentVersion string             // the agent component's version, when there is one
}

// parseCycloneDX lists the store paths a CycloneDX document names. A
// component's store path is its nix:store_path property (the nixpkgs
// convention) or nix:store-path (what release wrote first), else a
// /nix/store path in its bom-ref or a purl qualifier; a component with none
// of these is compared by name and version. The agent's own component
// (bom-ref agent:<attr>) gives the version, not a store path.
func parseCycloneDX(predicate []byte) (*sbom, error) {
	var doc cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(predicate), cdx.BOMFileFormatJSON).Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a CycloneDX document: %w", err)
	}
	if doc.BOMFormat != cdx.BOMFormat {
		return nil, fmt.Errorf("bomFormat is %q, not CycloneDX", doc.BOMFormat)
	}
	out := &sbom{}
	seen := map[string]bool{}
	var walk func(*[]cdx.Component)
	walk = func(cs *[]cdx.Component) {
		if cs == nil {
			return
		}
		for _, c := range *cs {
			walk(c.Components)
			if strings.HasPrefix(c.BOMRef, "agent:") {
				out.agentVersion = c.Version
				continue
			}
			sp, ok := storePathOf(c)
			if !ok || seen[sp.Key()] {
				continue
			}
			seen[sp.Key()] = true
			out.paths = append(out.paths, sp)
		}
	}
	walk(doc.Components)
	slices.SortFunc(out.paths, func(a, b record.StorePath) int { return strings.Compare(a.Key(), b.Key()) })
	return out, nil
}

func storePathOf(c cdx.Component) (record.StorePath, bool) {
	p := ""
	if c.Properties != nil {
		if i := slices.IndexFunc(*c.Properties, func(p cdx.Property) bool { return p.Name == "nix:store_path" || p.Name == "nix:store-path" }); i >= 0 {
			p = (*c.Properties)[i].Value
		}
	}
	if ref, ok := strings.CutPrefix(c.BOMRef, "nix:"); p == "" && ok && strings.HasPrefix(ref, "/nix/store/") {
		p = ref
	}
	if p = cmp.Or(p, purlStorePath(c.PackageURL)); p == "" {
		if c.Name == "" || c.Type == cdx.ComponentTypeContainer {
			return record.StorePath{}, false
		}
		return record.StorePath{Name: c.Name, Version: c.Version}, true
	}
	sp := record.StorePath{Path: p, Name: c.Name, Version: c.Version}
	if sp.Name == "" {
		if parsed, ok := flake.ParseStorePath(path.Base(p)); ok {
			sp.Name, sp.Version = parsed.Name, parsed.Version
		}
	}
	return sp, true
}

// purlStorePath is a /nix/store path held in any qualifier of a purl.
func purlStorePath(purl string) string {
	p, err := packageurl.FromString(purl)
	if err != nil {
		return ""
	}
	for _, q := range p.Qualifiers {
		if strings.HasPrefix(q.Value, "/nix/store/") {
			return q.Value
		}
	}
	return ""
}

// provenance is what a SLSA v1 provenance says that a comparison uses.
type provenance struct {
	version string
	inputs  map[string]record.Pin
}

// flakeInputPrefix names a flake input among the resolved dependencies.
const flakeInputPrefix = "flake-input:"

// parseProvenance reads the agent's version and the flake inputs. An input
// is recorded either with its git revision as the gitCommit digest and
// narHash and override annotations, or with its whole pin in a revision
// annotation (a rev, a sha256- NAR hash, or override:<ref>); both are read.
func parseProvenance(predicate []byte) (*provenance, error) {
	var p slsa1.ProvenancePredicate
	if err := json.Unmarshal(predicate, &p); err != nil {
		return nil, fmt.Errorf("not a SLSA v1 provenance: %w", err)
	}
	bd := p.BuildDefinition
	if bd.BuildType == "" && bd.ExternalParameters == nil && bd.ResolvedDependencies == nil {
		return nil, errors.New("not a SLSA v1 provenance: no buildDefinition")
	}
	out := &provenance{inputs: map[string]record.Pin{}}
	if params, ok := bd.ExternalParameters.(map[string]any); ok {
		out.version, _ = params["version"].(string)
	}
	for _, d := range bd.ResolvedDependencies {
		n, ok := strings.CutPrefix(d.Name, flakeInputPrefix)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := d.Annotations[k].(string); return s }
		pin := record.Pin{Rev: d.Digest["gitCommit"], NarHash: str("narHash"), Override: str("override")}
		switch rev := str("revision"); {
		case rev == "":
		case strings.HasPrefix(rev, "override:"):
			pin.Override = strings.TrimPrefix(rev, "override:")
		case strings.HasPrefix(rev, "sha256-"):
			pin.NarHash = rev
		case pin.Rev == "":
			pin.Rev = rev
		}
		out.inputs[n] = pin
	}
	return out, nil
}
