package sign

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/record"
)

// PredicateCycloneDX is the in-toto predicate type of a CycloneDX document,
// the one `cosign verify-attestation --type cyclonedx` selects.
const PredicateCycloneDX = "https://cyclonedx.org/bom"

// StorePath is one top-level /nix/store entry found inside an image.
type StorePath struct {
	Path    string // /nix/store/<hash>-<name>-<version>
	Hash    string
	Name    string
	Version string
}

// nixHash is a store path's hash part: 32 characters of Nix's base32.
var nixHash = regexp.MustCompile(`^[0-9abcdfghijklmnpqrsvwxyz]{32}$`)

// ParseStorePath splits a store path's base name the way Nix's
// builtins.parseDrvName does: the version starts at the first dash that is
// not followed by a letter ("bash-interactive-5.2p37" -> bash-interactive,
// 5.2p37). ok is false for names that are not store paths.
func ParseStorePath(base string) (sp StorePath, ok bool) {
	hash, rest, found := strings.Cut(base, "-")
	if !found || !nixHash.MatchString(hash) || rest == "" {
		return StorePath{}, false
	}
	sp = StorePath{Path: "/nix/store/" + base, Hash: hash, Name: rest}
	for i := 0; i < len(rest)-1; i++ {
		if rest[i] == '-' && !isLetter(rest[i+1]) {
			sp.Name, sp.Version = rest[:i], rest[i+1:]
			break
		}
	}
	return sp, true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// StorePaths lists the top-level /nix/store entries of every layer of img,
// sorted by path. It reads the image itself, so the SBOM describes what is
// shipped, not what the build meant to ship.
func StorePaths(ctx context.Context, img v1.Image) ([]StorePath, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	seen := map[string]StorePath{}
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := storePathsOfLayer(l, seen); err != nil {
			d, _ := l.Digest()
			return nil, fmt.Errorf("reading layer %s: %w", d, err)
		}
	}
	out := make([]StorePath, 0, len(seen))
	for _, sp := range seen {
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func storePathsOfLayer(l v1.Layer, seen map[string]StorePath) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		rest, ok := strings.CutPrefix(p, "nix/store/")
		if !ok {
			continue
		}
		base, _, _ := strings.Cut(rest, "/")
		if _, dup := seen[base]; dup {
			continue
		}
		if sp, ok := ParseStorePath(base); ok {
			seen[base] = sp
		}
	}
}

// SBOM is the CycloneDX 1.6 document of one per-arch image: the image, the
// agent's package (name, version, license) and every store path inside it.
func SBOM(ctx context.Context, img *record.Image) (json.RawMessage, error) {
	paths, err := StorePaths(ctx, img.Image)
	if err != nil {
		return nil, fmt.Errorf("reading store paths for the SBOM: %w", err)
	}
	cfg, err := img.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	if err := enc.EncodeVersion(cycloneDX(img, paths, cfg.Created.Time), cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("encoding the SBOM: %w", err)
	}
	return json.RawMessage(bytes.TrimSpace(buf.Bytes())), nil
}

func cycloneDX(img *record.Image, paths []StorePath, created time.Time) *cdx.BOM {
	agentInfo := img.Flake
	// The image's own creation time and a serial number derived from its
	// digest keep the document the same for the same image (Nix images carry
	// a fixed date), so re-running a release describes it identically.
	if created.IsZero() {
		created = time.Unix(1, 0)
	}
	sum := sha256.Sum256([]byte(img.Ref.String()))
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
			Name:    img.Ref.Context().Name(),
			Version: img.Ref.DigestStr(),
			Properties: &[]cdx.Property{
				{Name: "agent-images:platform", Value: img.Platform.String()},
				{Name: "agent-images:agent", Value: img.Agent},
			},
		},
	}
	agent := cdx.Component{
		BOMRef:      "agent:" + img.Agent,
		Type:        cdx.ComponentTypeApplication,
		Name:        img.Agent,
		Version:     agentInfo.Version,
		Description: agentInfo.Description,
	}
	if agentInfo.Name != "" {
		agent.Properties = &[]cdx.Property{{Name: "agent-images:name", Value: agentInfo.Name}}
	}
	if agentInfo.License != "" {
		agent.Licenses = &cdx.Licenses{{Expression: agentInfo.License}}
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
