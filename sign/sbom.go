package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
)

// PredicateCycloneDX is the in-toto predicate type of a CycloneDX document,
// the one `cosign verify-attestation --type cyclonedx` selects.
const PredicateCycloneDX = "https://cyclonedx.org/bom"

// PredicateSPDX is the in-toto predicate type of an SPDX document, the one
// `cosign verify-attestation --type spdxjson` selects.
const PredicateSPDX = "https://spdx.dev/Document"

// SBOMFormat is a document format of the SBOM attestation.
type SBOMFormat string

const (
	SBOMCycloneDX SBOMFormat = "cyclonedx" // CycloneDX 1.6 JSON
	SBOMSPDX      SBOMFormat = "spdx"      // SPDX 2.3 JSON
)

// allSBOMFormats are the formats in the order their attestations are
// written; signing writes all of them unless told otherwise.
func allSBOMFormats() []SBOMFormat { return []SBOMFormat{SBOMCycloneDX, SBOMSPDX} }

// sbomTypes are each format's in-toto predicate type and its name for
// `cosign verify-attestation --type`.
var sbomTypes = map[SBOMFormat]struct{ predicate, cosign string }{
	SBOMCycloneDX: {PredicateCycloneDX, "cyclonedx"},
	SBOMSPDX:      {PredicateSPDX, "spdxjson"},
}

func (f SBOMFormat) predicateType() string { return sbomTypes[f].predicate }
func (f SBOMFormat) cosignType() string    { return sbomTypes[f].cosign }

// ParseSBOMFormats reads format names, each "cyclonedx" or "spdx" or a
// comma-separated list of them, into formats in attestation order, each
// once. Naming none, or one it does not know, is an error that says what
// is accepted.
func ParseSBOMFormats(names ...string) ([]SBOMFormat, error) {
	var want []SBOMFormat
	for _, n := range names {
		for f := range strings.SplitSeq(n, ",") {
			f := SBOMFormat(strings.ToLower(strings.TrimSpace(f)))
			if sbomTypes[f].predicate == "" {
				return nil, fmt.Errorf("unknown SBOM format %q: use cyclonedx, spdx, or both (cyclonedx,spdx)", f)
			}
			want = append(want, f)
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no SBOM format given: use cyclonedx, spdx, or both (cyclonedx,spdx)")
	}
	return slices.DeleteFunc(allSBOMFormats(), func(f SBOMFormat) bool { return !slices.Contains(want, f) }), nil
}

// sboms are the SBOM documents of the per-arch image img at d, of which
// agent is what the flake says, one per format in that order.
//
// Both formats say the same: the image (an OCI purl, its manifest digest,
// its derivation as nix:drv_path when the release knows it), the agent (its
// version, licence, description) and every store path in the image: name
// and version split from the path, a pkg:generic purl with the path as the
// nix_store_path qualifier, the nix:store_path property, and the SHA-256 of
// its NAR serialisation (Nix's narHash) when the local store holds it.
func sboms(ctx context.Context, run flake.Runner, d name.Digest, img *record.Image, agent flake.Image, formats ...SBOMFormat) ([]json.RawMessage, error) {
	paths, err := storePaths(ctx, img.Image, run)
	if err != nil {
		return nil, fmt.Errorf("reading store paths for the SBOM: %w", err)
	}
	cfg, err := img.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	if agent.Attr == "" {
		agent.Attr = img.Agent
	}
	in := sbomInput{ref: d, img: img, agent: agent, paths: paths, created: cfg.Created.Time}
	// The image's own creation time and an ID derived from its digest keep
	// the documents the same for the same image (Nix images carry a fixed
	// date), so re-running a release describes it identically.
	if in.created.IsZero() {
		in.created = time.Unix(1, 0)
	}
	in.created = in.created.UTC()
	sum := sha256.Sum256([]byte(d.String()))
	sum[6] = (sum[6] & 0x0f) | 0x50 // a name-based (v5-style) UUID
	sum[8] = (sum[8] & 0x3f) | 0x80
	in.uuid = fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])

	out := make([]json.RawMessage, len(formats))
	for i, f := range formats {
		var buf bytes.Buffer
		switch f {
		case SBOMCycloneDX:
			err = cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).EncodeVersion(in.cycloneDX(), cdx.SpecVersion1_6)
		case SBOMSPDX:
			err = spdxjson.Write(in.spdx(), &buf)
		default:
			err = fmt.Errorf("unknown SBOM format %q", f)
		}
		if err != nil {
			return nil, fmt.Errorf("encoding the %s SBOM: %w", f, err)
		}
		out[i] = json.RawMessage(bytes.TrimSpace(buf.Bytes()))
	}
	return out, nil
}

// sbomInput is what the SBOMs of one image are made of.
type sbomInput struct {
	ref     name.Digest // where the image is
	img     *record.Image
	agent   flake.Image // what the flake says of it
	paths   []storePath
	created time.Time
	uuid    string // the same for the same manifest digest
}

// property is a name and value that CycloneDX keeps as a component
// property and SPDX as an annotation "name: value".
type property struct{ name, value string }

// Property names. nix:store_path and nix:drv_path follow the CycloneDX
// generators of the Nix ecosystem (sbomnix, bombon and others).
const (
	propStorePath = "nix:store_path"
	propDrvPath   = "nix:drv_path"
)

func (in sbomInput) imageProperties() []property {
	props := []property{
		{"agent-images:platform", in.img.Platform.String()},
		{"agent-images:agent", in.agent.Attr},
	}
	if in.img.DrvPath != "" {
		props = append(props, property{propDrvPath, in.img.DrvPath})
	}
	return props
}

// imagePURL is the image as an OCI purl: repository's last part as the
// name, manifest digest as the version, where it lies and its architecture.
func (in sbomInput) imagePURL() string {
	repo := in.ref.Context()
	parts := strings.Split(repo.RepositoryStr(), "/")
	q := packageurl.Qualifiers{
		{Key: "arch", Value: in.img.Platform.Architecture},
		{Key: "repository_url", Value: repo.Name()},
	}
	return packageurl.NewPackageURL(packageurl.TypeOCI, "", parts[len(parts)-1], in.ref.DigestStr(), q, "").ToString()
}

// agentPURL names the agent by its flake attribute at its version: a
// pkg:generic purl, as the flake says nothing of the ecosystem it comes from.
func (in sbomInput) agentPURL() string {
	return packageurl.NewPackageURL(packageurl.TypeGeneric, "", in.agent.Attr, in.agent.Version, nil, "").ToString()
}

// storePathPURL is a store path as pkg:generic/NAME@VERSION with the path as
// the nix_store_path qualifier. Not pkg:nix: that type names a package by
// its attribute path in a package set (and its origin, such as nixpkgs),
// and a store path in an image tells neither.
func storePathPURL(sp storePath) string {
	q := packageurl.Qualifiers{{Key: "nix_store_path", Value: sp.Path}}
	return packageurl.NewPackageURL(packageurl.TypeGeneric, "", sp.Name, sp.Version, q, "").ToString()
}

func (in sbomInput) cycloneDX() *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + in.uuid
	bom.Metadata = &cdx.Metadata{
		Timestamp: in.created.Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "agent-images-release",
		}}},
		Component: &cdx.Component{
			BOMRef:     "image",
			Type:       cdx.ComponentTypeContainer,
			Name:       in.ref.Context().Name(),
			Version:    in.ref.DigestStr(),
			PackageURL: in.imagePURL(),
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.TrimPrefix(in.ref.DigestStr(), "sha256:")}},
			Properties: cdxProperties(in.imageProperties()),
		},
	}
	a := in.agent
	agent := cdx.Component{
		BOMRef:      "agent:" + a.Attr,
		Type:        cdx.ComponentTypeApplication,
		Name:        a.Attr,
		Version:     a.Version,
		Description: a.Description,
		PackageURL:  in.agentPURL(),
	}
	if a.Name != "" {
		agent.Properties = cdxProperties([]property{{"agent-images:name", a.Name}})
	}
	if a.License != "" {
		agent.Licenses = &cdx.Licenses{{Expression: a.License}}
	}
	components := []cdx.Component{agent}
	refs := []string{agent.BOMRef}
	for _, sp := range in.paths {
		c := cdx.Component{
			BOMRef:     "nix:" + sp.Path,
			Type:       cdx.ComponentTypeLibrary,
			Name:       sp.Name,
			Version:    sp.Version,
			PackageURL: storePathPURL(sp),
			Properties: cdxProperties([]property{{propStorePath, sp.Path}}),
		}
		if sp.NarHash != "" {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: sp.NarHash}}
		}
		components = append(components, c)
		refs = append(refs, c.BOMRef)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: "image", Dependencies: &refs}}
	return bom
}

func cdxProperties(props []property) *[]cdx.Property {
	out := make([]cdx.Property, len(props))
	for i, p := range props {
		out[i] = cdx.Property{Name: p.name, Value: p.value}
	}
	return &out
}
