package sign

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
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

// sbomTypes are each format's in-toto predicate type, its name for
// `cosign verify-attestation --type`, and how its document is written.
var sbomTypes = map[SBOMFormat]struct {
	predicate, cosign string
	encode            func(sbomInput, io.Writer) error
}{
	SBOMCycloneDX: {PredicateCycloneDX, "cyclonedx", func(in sbomInput, w io.Writer) error {
		return cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON).EncodeVersion(in.cycloneDX(), cdx.SpecVersion1_6)
	}},
	SBOMSPDX: {PredicateSPDX, "spdxjson", func(in sbomInput, w io.Writer) error { return spdxjson.Write(in.spdx(), w) }},
}

func (f SBOMFormat) predicateType() string { return sbomTypes[f].predicate }
func (f SBOMFormat) cosignType() string    { return sbomTypes[f].cosign }

// ParseSBOMFormats reads format names, each "cyclonedx" or "spdx" or a
// comma-separated list of them, into formats in attestation order, each
// once. Naming none, or one it does not know, is an error that says what
// is accepted.
func ParseSBOMFormats[S ~string](names ...S) ([]SBOMFormat, error) {
	var want []SBOMFormat
	for _, n := range names {
		for f := range strings.SplitSeq(string(n), ",") {
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
// agent is what the flake says, one per format in that order. Both
// describe the same components.
func sboms(ctx context.Context, run flake.Runner, d name.Digest, img *record.Image, agent flake.Image, formats ...SBOMFormat) ([]json.RawMessage, error) {
	paths, err := storePaths(ctx, img.Image, run)
	if err != nil {
		return nil, fmt.Errorf("reading store paths for the SBOM: %w", err)
	}
	cfg, err := img.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	agent.Attr = cmp.Or(agent.Attr, img.Agent)
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
		if err := sbomTypes[f].encode(in, &buf); err != nil {
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

// component is one thing both SBOMs describe, as both say it.
type component struct {
	kind                cdx.ComponentType // SPDX's primary purpose too
	ref, spdxID         string            // CycloneDX bom-ref, SPDX element ID
	name, version, purl string
	sha256              string // hex, "" when unknown
	license             string // the agent's SPDX expression
	description         string
	props               []property
}

// components are the image, the agent and every store path, in that order.
func (in sbomInput) components() []component {
	repo, a := in.ref.Context(), in.agent
	props := []property{{"agent-images:platform", in.img.Platform.String()}, {"agent-images:agent", a.Attr}}
	if in.img.DrvPath != "" {
		props = append(props, property{propDrvPath, in.img.DrvPath})
	}
	// The image as an OCI purl: the repository's last part as the name, the
	// manifest digest as the version, where it lies and its architecture.
	q := packageurl.Qualifiers{{Key: "arch", Value: in.img.Platform.Architecture}, {Key: "repository_url", Value: repo.Name()}}
	image := component{kind: cdx.ComponentTypeContainer, ref: "image", spdxID: "image", name: repo.Name(), version: in.ref.DigestStr(),
		purl:   packageurl.NewPackageURL(packageurl.TypeOCI, "", path.Base(repo.RepositoryStr()), in.ref.DigestStr(), q, "").ToString(),
		sha256: strings.TrimPrefix(in.ref.DigestStr(), "sha256:"), props: props}
	agent := component{kind: cdx.ComponentTypeApplication, ref: "agent:" + a.Attr, spdxID: "agent-" + a.Attr, name: a.Attr, version: a.Version,
		// pkg:generic, as the flake says nothing of the ecosystem it comes from.
		purl:    packageurl.NewPackageURL(packageurl.TypeGeneric, "", a.Attr, a.Version, nil, "").ToString(),
		license: a.License, description: a.Description}
	if a.Name != "" {
		agent.props = []property{{"agent-images:name", a.Name}}
	}
	out := []component{image, agent}
	for _, sp := range in.paths {
		// pkg:generic/NAME@VERSION with the path as the nix_store_path
		// qualifier. Not pkg:nix: that type names a package by its attribute
		// path in a package set (and its origin, such as nixpkgs), and a
		// store path in an image tells neither.
		q := packageurl.Qualifiers{{Key: "nix_store_path", Value: sp.Path}}
		out = append(out, component{kind: cdx.ComponentTypeLibrary, ref: "nix:" + sp.Path, spdxID: "nix-" + sp.Hash, name: sp.Name, version: sp.Version,
			purl:   packageurl.NewPackageURL(packageurl.TypeGeneric, "", sp.Name, sp.Version, q, "").ToString(),
			sha256: sp.NarHash, props: []property{{propStorePath, sp.Path}}})
	}
	return out
}

func (in sbomInput) cycloneDX() *cdx.BOM {
	all := in.components()
	image := cdxComponent(all[0])
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + in.uuid
	bom.Metadata = &cdx.Metadata{
		Timestamp: in.created.Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "agent-images-release",
		}}},
		Component: &image,
	}
	var components []cdx.Component
	var refs []string
	for _, c := range all[1:] {
		components, refs = append(components, cdxComponent(c)), append(refs, c.ref)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: "image", Dependencies: &refs}}
	return bom
}

func cdxComponent(c component) cdx.Component {
	out := cdx.Component{BOMRef: c.ref, Type: c.kind, Name: c.name, Version: c.version, Description: c.description, PackageURL: c.purl}
	if c.sha256 != "" {
		out.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: c.sha256}}
	}
	if c.license != "" {
		out.Licenses = &cdx.Licenses{{Expression: c.license}}
	}
	if len(c.props) > 0 {
		props := make([]cdx.Property, len(c.props))
		for i, p := range c.props {
			props[i] = cdx.Property{Name: p.name, Value: p.value}
		}
		out.Properties = &props
	}
	return out
}

// storePath is one top-level /nix/store entry found inside an image.
type storePath struct {
	Path                string // /nix/store/<hash>-<name>-<version>[-<output>]
	Hash, Name, Version string // split as flake.ParseStorePath does
	// NarHash is the hex SHA-256 of the path's NAR serialisation, as Nix
	// registered it (narHash); "" when the local store does not hold it.
	NarHash string
}

// storePaths lists the top-level /nix/store entries of img's layers, sorted
// by path, each with the narHash Nix registered for it: the image says what
// is shipped, Nix what each path is, without a second read of its files.
//
// The paths are usually in the local store, since this process built the
// image (a reused or merged image is never attested anew). Not always: the
// image does not refer to its contents, so one Nix already had or fetched
// does not bring them, and a garbage collection may have taken them. Nix
// then fetches such a path from a substituter; one it cannot get is listed
// without a hash.
func storePaths(ctx context.Context, img v1.Image, run flake.Runner) ([]storePath, error) {
	fs := mutate.Extract(img) // the image's filesystem, its layers applied
	defer fs.Close()
	found := map[string]storePath{} // by path
	tr := tar.NewReader(fs)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image's layers: %w", err)
		}
		rest, ok := strings.CutPrefix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "nix/store/")
		base, _, _ := strings.Cut(rest, "/")
		if n, valid := flake.ParseStorePath(base); ok && valid {
			found["/nix/store/"+base] = storePath{Path: "/nix/store/" + base, Hash: n.Hash, Name: n.Name, Version: n.Version}
		}
	}
	paths := slices.Sorted(maps.Keys(found))
	hashes, err := flake.NarHashes(ctx, run, paths)
	if err != nil {
		return nil, err
	}
	out := make([]storePath, len(paths))
	for i, p := range paths {
		out[i] = found[p]
		if sri, ok := hashes[p]; ok {
			sum, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sri, "sha256-"))
			if !strings.HasPrefix(sri, "sha256-") || err != nil || len(sum) != 32 {
				return nil, fmt.Errorf("nix says the narHash of %s is %q, want sha256-<base64>", p, sri)
			}
			out[i].NarHash = hex.EncodeToString(sum)
		}
	}
	return out, nil
}
