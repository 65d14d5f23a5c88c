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
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nothingnesses/agent-images/record"
)

func TestParseStorePath(t *testing.T) {
	tests := []struct {
		name, base        string
		wantName, wantVer string
		wantOK            bool
	}{
		{"name and version", hashFoo + "-foo-1.0", "foo", "1.0", true},
		{"dash in name", hashFoo + "-bash-interactive-5.2p37", "bash-interactive", "5.2p37", true},
		{"output suffix stays in version", hashFoo + "-glibc-2.40-66-bin", "glibc", "2.40-66-bin", true},
		{"no version", hashFoo + "-source", "source", "", true},
		{"not a hash", "not-a-store-path-1.0", "", "", false},
		{"hash only", hashFoo, "", "", false},
		{"letters outside nix base32", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-foo-1.0", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, ok := ParseStorePath(tt.base)
			if ok != tt.wantOK || sp.Name != tt.wantName || sp.Version != tt.wantVer {
				t.Errorf("ParseStorePath(%q) = %q, %q, %v, want %q, %q, %v",
					tt.base, sp.Name, sp.Version, ok, tt.wantName, tt.wantVer, tt.wantOK)
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
	if !slices.Equal(got, want) {
		t.Errorf("StorePaths = %+v, want %+v", got, want)
	}
}

// localImage is the record of a test image that was never pushed.
func localImage(t *testing.T) *record.Image {
	t.Helper()
	img := testRecord(t, "arm64", testImage(t, "arm64", "x"))
	img.Flake.License = "MIT OR Apache-2.0"
	img.DrvPath = "/nix/store/" + hashFoo + "-pi.drv"
	repo, _ := name.NewRepository("ghcr.io/nothingnesses/agent-images/pi")
	img.Ref = repo.Digest(img.Digest.String())
	return img
}

const testBuilderID = "https://github.com/nothingnesses/agent-images/.github/workflows/release.yml@refs/heads/main"

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
			img := localImage(t)
			img.Flake.License = tt.license
			sbom, err := SBOM(t.Context(), img)
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
			again, _ := SBOM(t.Context(), img)
			if !bytes.Equal(sbom, again) {
				t.Errorf("SBOM of the same image differs between runs:\n%s\n%s", sbom, again)
			}
		})
	}
}

func TestProvenance(t *testing.T) {
	img := localImage(t)
	const invocation = "https://github.com/nothingnesses/agent-images/actions/runs/3/attempts/1#build"
	got, err := json.Marshal(Provenance(testSource, testBuilderID, invocation, img))
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
