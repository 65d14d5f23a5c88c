package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// PredicateCycloneDX is the in-toto predicate type of a CycloneDX document,
// the one `cosign verify-attestation --type cyclonedx` selects.
const PredicateCycloneDX = "https://cyclonedx.org/bom"

// SBOM is the CycloneDX 1.6 document of one per-arch image: the image, the
// agent's package (name, version, license) and every store path inside it.
func SBOM(ctx context.Context, r Request, p Platform) (json.RawMessage, error) {
	paths, err := StorePaths(ctx, p.Image)
	if err != nil {
		return nil, fmt.Errorf("reading store paths for the SBOM: %w", err)
	}
	cfg, err := p.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	if err := enc.EncodeVersion(cycloneDX(r, p, paths, cfg.Created.Time), cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("encoding the SBOM: %w", err)
	}
	return json.RawMessage(bytes.TrimSpace(buf.Bytes())), nil
}

func cycloneDX(r Request, p Platform, paths []StorePath, created time.Time) *cdx.BOM {
	// The image's own creation time and a serial number derived from its
	// digest keep the document the same for the same image (Nix images carry
	// a fixed date), so re-running a release describes it identically.
	if created.IsZero() {
		created = time.Unix(1, 0)
	}
	sum := sha256.Sum256([]byte(p.Manifest.String()))
	sum[6] = (sum[6] & 0x0f) | 0x50 // a name-based (v5-style) UUID
	sum[8] = (sum[8] & 0x3f) | 0x80
	serial := fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])

	bom := cdx.NewBOM()
	bom.SerialNumber = serial
	bom.Metadata = &cdx.Metadata{
		Timestamp: created.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "agent-images-release",
		}}},
		Component: &cdx.Component{
			BOMRef:  "image",
			Type:    cdx.ComponentTypeContainer,
			Name:    p.Manifest.Context().Name(),
			Version: p.Manifest.DigestStr(),
			Properties: &[]cdx.Property{
				{Name: "agent-images:platform", Value: p.Platform.String()},
				{Name: "agent-images:agent", Value: r.Agent.Attr},
			},
		},
	}
	agent := cdx.Component{
		BOMRef:      "agent:" + r.Agent.Attr,
		Type:        cdx.ComponentTypeApplication,
		Name:        r.Agent.Attr,
		Version:     r.Agent.Version,
		Description: r.Agent.Description,
	}
	if r.Agent.Name != "" {
		agent.Properties = &[]cdx.Property{{Name: "agent-images:name", Value: r.Agent.Name}}
	}
	if r.Agent.License != "" {
		agent.Licenses = &cdx.Licenses{{Expression: r.Agent.License}}
	}
	components := []cdx.Component{agent}
	refs := []string{agent.BOMRef}
	for _, sp := range paths {
		c := cdx.Component{
			BOMRef:     "nix:" + sp.Path,
			Type:       cdx.ComponentTypeLibrary,
			Name:       sp.Name,
			Version:    sp.Version,
			Properties: &[]cdx.Property{{Name: "nix:store-path", Value: sp.Path}},
		}
		components = append(components, c)
		refs = append(refs, c.BOMRef)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: "image", Dependencies: &refs}}
	return bom
}
