package sign

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestParseStorePath(t *testing.T) {
	tests := []struct {
		name, base                 string
		wantName, wantVer, wantOut string
		wantOK                     bool
	}{
		{"name and version", hashFoo + "-foo-1.0", "foo", "1.0", "", true},
		{"dash in name", hashFoo + "-bash-interactive-5.2p37", "bash-interactive", "5.2p37", "", true},
		{"output suffix leaves the version", hashFoo + "-glibc-2.40-66-bin", "glibc", "2.40-66", "bin", true},
		{"dev output", hashFoo + "-openssl-3.4.1-dev", "openssl", "3.4.1", "dev", true},
		{"other suffixes stay in the version", hashFoo + "-foo-1.0-rc", "foo", "1.0-rc", "", true},
		{"no version", hashFoo + "-source", "source", "", "", true},
		{"not a hash", "not-a-store-path-1.0", "", "", "", false},
		{"hash only", hashFoo, "", "", "", false},
		{"letters outside nix base32", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-foo-1.0", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, ok := ParseStorePath(tt.base)
			if ok != tt.wantOK || sp.Name != tt.wantName || sp.Version != tt.wantVer || sp.Output != tt.wantOut {
				t.Errorf("ParseStorePath(%q) = %q, %q, %q, %v, want %q, %q, %q, %v",
					tt.base, sp.Name, sp.Version, sp.Output, ok, tt.wantName, tt.wantVer, tt.wantOut, tt.wantOK)
			}
		})
	}
}

func TestStorePaths(t *testing.T) {
	got, err := StorePaths(t.Context(), testImage(t, "amd64", "x"))
	if err != nil {
		t.Fatal(err)
	}
	want := []StorePath{
		{Path: "/nix/store/" + hashFoo + "-foo-1.0", Hash: hashFoo, Name: "foo", Version: "1.0"},
		{Path: "/nix/store/" + hashBash + "-bash-interactive-5.2p37", Hash: hashBash, Name: "bash-interactive", Version: "5.2p37"},
	}
	// The NAR hashes are checked against Nix in TestNARHashMatchesNix.
	for i := range got {
		if got[i].NarHash.Algorithm != "sha256" || len(got[i].NarHash.Hex) != 64 {
			t.Errorf("StorePaths()[%d].NarHash = %v, want a SHA-256", i, got[i].NarHash)
		}
		got[i].NarHash = v1.Hash{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("StorePaths = %+v, want %+v", got, want)
	}
}

// localRequest is a release of test images that were never pushed.
func localRequest(t *testing.T) (Request, Platform) {
	t.Helper()
	img := testImage(t, "arm64", "x")
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository("ghcr.io/nothingnesses/agent-images/pi")
	p := Platform{Manifest: repo.Digest(d.String()), Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Image: img,
		Derivation: "/nix/store/" + hashFoo + "-pi.drv"}
	r := Request{
		Index:     repo.Digest(d.String()),
		Platforms: []Platform{p},
		Agent:     Agent{Attr: "pi", Name: "Pi", Version: "0.70.6", License: "MIT OR Apache-2.0", Description: "A coding agent"},
		Source: Source{Repository: "https://github.com/nothingnesses/agent-images", Commit: "0123456789abcdef0123456789abcdef01234567",
			FlakeInputs: map[string]FlakeInput{"nixpkgs": {Rev: "89abcdef0123456789abcdef0123456789abcdef"},
				"llm-agents": {NarHash: "sha256-StX9CbIyd4OlIgU4/5bO+GuklGMlSieFKc/8n2VQ+5Q=", Override: "path:(local)"}}},
		BuilderID: "https://github.com/nothingnesses/agent-images/.github/workflows/release.yml@refs/heads/main",
	}
	return r, p
}

// TestSBOMValidatesAgainstSchema checks the SBOM against CycloneDX's own
// 1.6 JSON schema (sign/testdata/cyclonedx, see its README for the source)
// and that it names the agent and every store path in the image.
func TestSBOMValidatesAgainstSchema(t *testing.T) {
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
			r, p := localRequest(t)
			r.Agent.License = tt.license
			sbom, err := SBOM(t.Context(), r, p)
			if err != nil {
				t.Fatalf("SBOM = %v", err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(sbom))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Errorf("SBOM does not validate against CycloneDX 1.6: %v\n%s", err, sbom)
			}
			var doc struct {
				SpecVersion string `json:"specVersion"`
				Components  []struct {
					Name, Version string
					Licenses      []struct{ Expression string }
				}
			}
			if err := json.Unmarshal(sbom, &doc); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range doc.Components {
				got = append(got, c.Name+"@"+c.Version)
			}
			want := []string{"pi@0.70.6", "foo@1.0", "bash-interactive@5.2p37"}
			if doc.SpecVersion != "1.6" || !slices.Equal(got, want) {
				t.Errorf("SBOM components = %s %v, want 1.6 %v", doc.SpecVersion, got, want)
			}
			var lic string
			if l := doc.Components[0].Licenses; len(l) > 0 {
				lic = l[0].Expression
			}
			if lic != tt.license {
				t.Errorf("SBOM agent license = %q, want %q", lic, tt.license)
			}
			again, _ := SBOM(t.Context(), r, p)
			if !bytes.Equal(sbom, again) {
				t.Errorf("SBOM of the same image differs between runs:\n%s\n%s", sbom, again)
			}
		})
	}
}

func TestProvenance(t *testing.T) {
	r, p := localRequest(t)
	got, err := json.Marshal(Provenance(r, p))
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
		RunDetails struct{ Builder struct{ ID string } }
	}
	if err := json.Unmarshal(got, &prov); err != nil {
		t.Fatal(err)
	}
	bd := prov.BuildDefinition
	if bd.BuildType != BuildType || bd.ExternalParameters["agent"] != "pi" || bd.ExternalParameters["commit"] != r.Source.Commit ||
		bd.InternalParameters["derivation"] != p.Derivation || prov.RunDetails.Builder.ID != r.BuilderID {
		t.Errorf("Provenance = %s, want build type, agent, commit, derivation and builder", got)
	}
	deps := map[string]string{}
	for _, d := range bd.ResolvedDependencies {
		str := func(k string) string { return d.Annotations[k] }
		deps[d.Name] = strings.Join([]string{d.Digest["gitCommit"], str("revision"), str("narHash"), str("override")}, "|")
	}
	want := map[string]string{
		"source":                 r.Source.Commit + "|||",
		"flake-input:nixpkgs":    r.Source.FlakeInputs["nixpkgs"].Rev + "|||",
		"flake-input:llm-agents": "||sha256-StX9CbIyd4OlIgU4/5bO+GuklGMlSieFKc/8n2VQ+5Q=|path:(local)",
		"derivation":             "|||",
	}
	for k, v := range want {
		if got, ok := deps[k]; !ok || got != v {
			t.Errorf("Provenance dependency %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
}
