package sign

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

func TestParseSBOMFormats(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []SBOMFormat
		wantErr string
	}{
		{"one", []string{"spdx"}, []SBOMFormat{SBOMSPDX}, ""},
		{"comma-separated, in attestation order", []string{"spdx,cyclonedx"}, []SBOMFormat{SBOMCycloneDX, SBOMSPDX}, ""},
		{"repeated and cased", []string{"SPDX", " cyclonedx", "spdx"}, []SBOMFormat{SBOMCycloneDX, SBOMSPDX}, ""},
		{"unknown", []string{"cyclonedx,swid"}, nil, `unknown SBOM format "swid": use cyclonedx, spdx, or both`},
		{"empty", []string{""}, nil, `unknown SBOM format ""`},
		{"none", nil, nil, "no SBOM format given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSBOMFormats(tt.in...)
			if !slices.Equal(got, tt.want) || (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("ParseSBOMFormats(%q) = %v, %v, want %v, %q", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := New(t.Context(), Config{Key: "unused.key", SBOMFormats: []SBOMFormat{"xml"}}); err == nil || !strings.Contains(err.Error(), `unknown SBOM format "xml"`) {
		t.Errorf("New(Config{SBOMFormats: xml}) = %v, want the unknown format named", err)
	}
}

// TestStorePaths lists the store paths of an image's layers, each with the
// narHash the local store registered: a path added to the store has the
// hash nix-store reports for it, the made-up ones have none.
func TestStorePaths(t *testing.T) {
	testenv.Require(t, "nix", "nix-store")
	img, probe := withStorePath(t, testImage(t, "amd64", "x"))
	got, err := storePaths(t.Context(), img, flake.Run)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nix-store", "--query", "--hash", probe).Output()
	if err != nil {
		t.Fatalf("nix-store --query --hash %s: %v", probe, err)
	}
	probeHash, err := nixBase32Hex(strings.TrimPrefix(strings.TrimSpace(string(out)), "sha256:"))
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimPrefix(probe, "/nix/store/")
	want := []storePath{
		{Path: "/nix/store/" + hashFoo + "-foo-1.0", Hash: hashFoo, Name: "foo", Version: "1.0"},
		{Path: probe, Hash: base[:32], Name: "sbom-probe", Version: "1.0", NarHash: probeHash},
		{Path: "/nix/store/" + hashBash + "-bash-interactive-5.2p37", Hash: hashBash, Name: "bash-interactive", Version: "5.2p37"},
	}
	slices.SortFunc(want, func(a, b storePath) int { return strings.Compare(a.Path, b.Path) })
	if !slices.Equal(got, want) {
		t.Errorf("storePaths = %+v, want %+v", got, want)
	}
}

// withStorePath is img with one more layer, holding a file this test adds
// to the local Nix store, and that store path.
func withStorePath(t *testing.T, img v1.Image) (v1.Image, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sbom-probe-1.0")
	body := []byte("probe\n")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nix-store", "--add", file).Output()
	if err != nil {
		t.Fatalf("nix-store --add: %v", err)
	}
	path := strings.TrimSpace(string(out))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(path, "/"), Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		t.Fatal(err)
	}
	return img, path
}

// localImage is the record of a test image that was never pushed.
func localImage(t *testing.T) *record.Image {
	t.Helper()
	img := testRecord(t, "arm64", testImage(t, "arm64", "x"))
	img.DrvPath = "/nix/store/" + hashFoo + "-pi.drv"
	repo, _ := name.NewRepository("ghcr.io/nothingnesses/agent-images/pi")
	img.Ref = repo.Digest(img.Digest.String())
	return img
}

const testBuilderID = "https://github.com/nothingnesses/agent-images/.github/workflows/release.yml@refs/heads/main"

// cycloneDXSchema compiles CycloneDX's own 1.6 JSON schema
// (sign/testdata/cyclonedx, see its README for the source).
func cycloneDXSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range []string{"bom-1.6", "spdx", "jsf-0.82"} {
		path := filepath.Join("testdata", "cyclonedx", f+".SNAPSHOT.schema.json")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// bom-1.6 refers to its neighbours by their file names.
		if err := c.AddResource("http://cyclonedx.org/schema/"+f+".SNAPSHOT.schema.json", doc); err != nil {
			t.Fatal(err)
		}
	}
	schema, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.SNAPSHOT.schema.json")
	if err != nil {
		t.Fatalf("compiling the CycloneDX schema: %v", err)
	}
	// The validator is not vacuous: a component of an unknown type fails.
	bad, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"bogus","name":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(bad); err == nil {
		t.Fatal("schema.Validate(component of type bogus) = nil, want an error")
	}
	return schema
}

// readSPDX parses an SPDX 2.3 JSON document with spdx/tools-golang, which
// refuses malformed identifiers, and checks it with that library's
// validator (every relationship names an element of the document).
func readSPDX(t *testing.T, raw []byte) *spdx.Document {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("reading the SPDX document: %v\n%s", err, raw)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatalf("spdxlib.ValidateDocument = %v\n%s", err, raw)
	}
	return doc
}

// sbomComponent is what both formats say of one component.
type sbomComponent struct {
	Name, Version, PURL, SHA256 string
	Properties                  map[string]string
}

// TestSBOMs checks both documents of an image: the CycloneDX one against
// CycloneDX's 1.6 JSON schema, the SPDX one with spdx/tools-golang's reader
// and validator and SPDX 2.3's mandatory fields; that both name the image,
// the agent and every store path with the same purls, properties and NAR
// hashes; and that the same image always gives the same bytes.
func TestSBOMs(t *testing.T) {
	testenv.Require(t, "nix", "nix-store")
	schema := cycloneDXSchema(t)
	// The SPDX validator is not vacuous either.
	if _, err := spdxjson.Read(strings.NewReader(`{"spdxVersion":"SPDX-2.3","SPDXID":"DOCUMENT","name":"x"}`)); err == nil {
		t.Fatal("spdxjson.Read(SPDXID without SPDXRef-) = nil error, want one")
	}
	dangling := &spdx.Document{Relationships: []*spdx.Relationship{{RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "nothing"), Relationship: "DESCRIBES"}}}
	if err := spdxlib.ValidateDocument(dangling); err == nil {
		t.Fatal("spdxlib.ValidateDocument(relationship to a missing package) = nil, want an error")
	}

	tests := []struct {
		name    string
		license string
	}{
		{"SPDX expression", "MIT OR Apache-2.0"},
		{"unfree", "LicenseRef-unfree"},
		{"no license", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := localImage(t)
			agent := testAgent
			agent.License = tt.license
			p.Image, _ = withStorePath(t, p.Image)
			docs, err := sboms(t.Context(), flake.Run, p.Ref, p, agent, SBOMCycloneDX, SBOMSPDX)
			if err != nil {
				t.Fatalf("sboms = %v", err)
			}
			again, err := sboms(t.Context(), flake.Run, p.Ref, p, agent, SBOMCycloneDX, SBOMSPDX)
			if err != nil {
				t.Fatal(err)
			}
			for i := range docs {
				if !bytes.Equal(docs[i], again[i]) {
					t.Errorf("SBOM %d of the same image differs between runs:\n%s\n%s", i, docs[i], again[i])
				}
			}
			paths, err := storePaths(t.Context(), p.Image, flake.Run)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(paths, func(sp storePath) bool { return sp.NarHash != "" }) {
				t.Fatalf("storePaths = %+v, want the path in the local store with its NAR hash", paths)
			}

			// What both documents must say, component by component.
			want := []sbomComponent{
				{Name: "ghcr.io/nothingnesses/agent-images/pi", Version: p.Ref.DigestStr(),
					PURL:       "pkg:oci/pi@" + p.Ref.DigestStr() + "?arch=arm64&repository_url=ghcr.io%2Fnothingnesses%2Fagent-images%2Fpi",
					SHA256:     strings.TrimPrefix(p.Ref.DigestStr(), "sha256:"),
					Properties: map[string]string{"agent-images:platform": "linux/arm64", "agent-images:agent": "pi", "nix:drv_path": p.DrvPath}},
				{Name: "pi", Version: "0.70.6", PURL: "pkg:generic/pi@0.70.6", Properties: map[string]string{"agent-images:name": "Pi"}},
			}
			for _, sp := range paths {
				want = append(want, sbomComponent{Name: sp.Name, Version: sp.Version,
					PURL:       "pkg:generic/" + sp.Name + "@" + sp.Version + "?nix_store_path=" + strings.ReplaceAll(sp.Path, "/", "%2F"),
					SHA256:     sp.NarHash,
					Properties: map[string]string{"nix:store_path": sp.Path}})
			}

			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(docs[0]))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Errorf("CycloneDX SBOM does not validate against CycloneDX 1.6: %v\n%s", err, docs[0])
			}
			compareComponents(t, "CycloneDX", cycloneDXComponents(t, docs[0], tt.license), want)
			compareComponents(t, "SPDX", spdxComponents(t, readSPDX(t, docs[1]), tt.license), want)
		})
	}
}

func compareComponents(t *testing.T, format string, got, want []sbomComponent) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s has %d components, want %d:\n%+v", format, len(got), len(want), got)
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Version != w.Version || g.PURL != w.PURL || g.SHA256 != w.SHA256 || !maps.Equal(g.Properties, w.Properties) {
			t.Errorf("%s component %d =\n%+v\nwant\n%+v", format, i, g, w)
		}
	}
}

// cycloneDXComponents reads the image and its components out of a
// CycloneDX document, and checks its version and the agent's license.
func cycloneDXComponents(t *testing.T, raw []byte, license string) []sbomComponent {
	t.Helper()
	type component struct {
		Name, Version, PURL string
		Hashes              []struct{ Alg, Content string }
		Properties          []struct{ Name, Value string }
		Licenses            []struct{ Expression string }
	}
	var doc struct {
		SpecVersion string
		Metadata    struct{ Component component }
		Components  []component
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SpecVersion != "1.6" {
		t.Errorf("CycloneDX specVersion = %s, want 1.6", doc.SpecVersion)
	}
	if l := doc.Components[0].Licenses; (license == "") != (len(l) == 0) || (len(l) > 0 && l[0].Expression != license) {
		t.Errorf("CycloneDX agent licenses = %+v, want %q", l, license)
	}
	var out []sbomComponent
	for _, c := range append([]component{doc.Metadata.Component}, doc.Components...) {
		sc := sbomComponent{Name: c.Name, Version: c.Version, PURL: c.PURL, Properties: map[string]string{}}
		for _, h := range c.Hashes {
			if h.Alg == "SHA-256" {
				sc.SHA256 = h.Content
			}
		}
		for _, p := range c.Properties {
			sc.Properties[p.Name] = p.Value
		}
		out = append(out, sc)
	}
	return out
}

// spdxComponents reads the packages out of an SPDX document the way a
// consumer would: from the package the document DESCRIBES and what it
// CONTAINS, and checks SPDX 2.3's mandatory fields and the agent's
// licence, defined in the document when it is a LicenseRef.
func spdxComponents(t *testing.T, doc *spdx.Document, license string) []sbomComponent {
	t.Helper()
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" || doc.DocumentName == "" ||
		!strings.HasPrefix(doc.DocumentNamespace, "https://") || doc.CreationInfo == nil || len(doc.CreationInfo.Creators) == 0 || doc.CreationInfo.Created == "" {
		t.Errorf("SPDX document fields = %+v, want SPDX-2.3, CC0-1.0, SPDXRef-DOCUMENT, a name, an https namespace, creators and a date", doc)
	}
	byID := map[common.ElementID]*spdx.Package{}
	for _, p := range doc.Packages {
		if p.PackageName == "" || p.PackageDownloadLocation == "" || p.FilesAnalyzed || p.PackageVerificationCode != nil {
			t.Errorf("SPDX package %s = %+v, want a name, a download location and no file analysis", p.PackageSPDXIdentifier, p)
		}
		byID[p.PackageSPDXIdentifier] = p
	}
	var order []common.ElementID
	for _, r := range doc.Relationships {
		switch {
		case r.RefA.ElementRefID == "DOCUMENT" && r.Relationship == "DESCRIBES":
			order = append([]common.ElementID{r.RefB.ElementRefID}, order...)
		case r.Relationship == "CONTAINS":
			order = append(order, r.RefB.ElementRefID)
		}
	}
	if len(order) != len(doc.Packages) {
		t.Errorf("SPDX relationships reach %d of %d packages", len(order), len(doc.Packages))
	}
	var out []sbomComponent
	for _, id := range order {
		p := byID[id]
		sc := sbomComponent{Name: p.PackageName, Version: p.PackageVersion, Properties: map[string]string{}}
		for _, ref := range p.PackageExternalReferences {
			if ref.Category == "PACKAGE-MANAGER" && ref.RefType == "purl" {
				sc.PURL = ref.Locator
			}
		}
		for _, c := range p.PackageChecksums {
			if c.Algorithm == common.SHA256 {
				sc.SHA256 = c.Value
			}
		}
		for _, a := range p.Annotations {
			k, v, _ := strings.Cut(a.AnnotationComment, ": ")
			sc.Properties[k] = v
		}
		out = append(out, sc)
	}
	agent := byID[order[1]]
	wantDeclared := license
	if license == "" {
		wantDeclared = "NOASSERTION"
	}
	if agent.PackageLicenseDeclared != wantDeclared {
		t.Errorf("SPDX agent licenseDeclared = %q, want %q", agent.PackageLicenseDeclared, wantDeclared)
	}
	var defined []string
	for _, l := range doc.OtherLicenses {
		if l.ExtractedText == "" {
			t.Errorf("SPDX licence %s has no extracted text", l.LicenseIdentifier)
		}
		defined = append(defined, l.LicenseIdentifier)
	}
	if wantRefs := licenseRef.FindAllString(license, -1); !slices.Equal(defined, wantRefs) {
		t.Errorf("SPDX document defines licences %v, want %v (each LicenseRef it uses)", defined, wantRefs)
	}
	return out
}

func TestProvenance(t *testing.T) {
	img := localImage(t)
	const invocation = "https://github.com/nothingnesses/agent-images/actions/runs/3/attempts/1#build"
	got, err := json.Marshal(provenance(testSource, testBuilderID, invocation, img, testAgent.Version))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		BuildDefinition struct {
			BuildType          string
			ExternalParameters map[string]string
			InternalParameters map[string]string
			// names and digests of what the build used
			ResolvedDependencies []struct {
				Name        string
				URI         string
				Digest      map[string]string
				Annotations map[string]string
			}
		}
		RunDetails struct {
			Builder  struct{ ID string }
			Metadata struct{ InvocationID string }
		}
	}
	if err := json.Unmarshal(got, &prov); err != nil {
		t.Fatal(err)
	}
	bd := prov.BuildDefinition
	if bd.BuildType != BuildType || bd.ExternalParameters["agent"] != "pi" || bd.ExternalParameters["commit"] != testSource.Commit ||
		bd.InternalParameters["derivation"] != img.DrvPath || prov.RunDetails.Builder.ID != testBuilderID ||
		prov.RunDetails.Metadata.InvocationID != invocation {
		t.Errorf("Provenance = %s, want build type, agent, commit, derivation, builder and the job run", got)
	}
	deps := map[string]string{}
	for _, d := range bd.ResolvedDependencies {
		str := func(k string) string { return d.Annotations[k] }
		deps[d.Name] = strings.Join([]string{d.Digest["gitCommit"], str("revision"), str("narHash"), str("override")}, "|")
	}
	want := map[string]string{
		"source":                 testSource.Commit + "|||",
		"flake-input:nixpkgs":    testSource.FlakeInputs["nixpkgs"].Rev + "|||",
		"flake-input:llm-agents": "||sha256-StX9CbIyd4OlIgU4/5bO+GuklGMlSieFKc/8n2VQ+5Q=|path:(local)",
		"derivation":             "|||",
	}
	for k, v := range want {
		if got, ok := deps[k]; !ok || got != v {
			t.Errorf("Provenance dependency %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
}
