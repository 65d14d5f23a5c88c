package changes

import (
	"encoding/base64"
	"github.com/nothingnesses/agent-images/record"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The testdata documents are the predicates of a real release of pi (the
// stand-in flake, 0.71.0, linux/amd64), as `release` attested them.
func readTestdata(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCycloneDXOfARelease(t *testing.T) {
	s, err := parseCycloneDX(readTestdata(t, "cyclonedx-release.json"))
	if err != nil {
		t.Fatalf("parseCycloneDX = %v", err)
	}
	if s.agentVersion != "0.71.0" {
		t.Errorf("agent version = %q, want 0.71.0", s.agentVersion)
	}
	if len(s.paths) != 19 {
		t.Errorf("%d store paths, want the 19 of the image", len(s.paths))
	}
	want := record.StorePath{Path: "/nix/store/425g490sf6bnx0xrr449bpjphybdmfvh-pi-0.71.0", Name: "pi", Version: "0.71.0"}
	found := false
	for _, p := range s.paths {
		if p == want {
			found = true
		}
		if !strings.HasPrefix(p.Path, "/nix/store/") || p.Name == "" {
			t.Errorf("store path %+v lacks its path or name", p)
		}
	}
	if !found {
		t.Errorf("store paths %v lack %+v", s.paths, want)
	}
}

// TestParseCycloneDXIsTolerant reads store paths however a CycloneDX
// document carries them: the nixpkgs property, ours, a bom-ref, a purl
// qualifier, or only a name and version.
func TestParseCycloneDXIsTolerant(t *testing.T) {
	doc := `{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [
	  {"bom-ref": "agent:pi", "type": "application", "name": "pi", "version": "0.71.0"},
	  {"type": "library", "name": "bash-interactive", "version": "5.2p37",
	   "properties": [{"name": "nix:store_path", "value": "/nix/store/` + h1 + `-bash-interactive-5.2p37"}]},
	  {"type": "library", "name": "pi", "version": "0.71.0", "purl": "pkg:generic/pi@0.71.0",
	   "properties": [{"name": "nix:store-path", "value": "/nix/store/` + h2 + `-pi-0.71.0"}]},
	  {"bom-ref": "nix:/nix/store/` + h3 + `-jq-1.7.1", "type": "library"},
	  {"type": "library", "name": "curl", "version": "8.1",
	   "purl": "pkg:generic/curl@8.1?nix_store_path=%2Fnix%2Fstore%2F` + h4 + `-curl-8.1"},
	  {"type": "library", "name": "tzdata", "version": "2025b", "components": [
	    {"type": "library", "name": "zoneinfo", "version": "2025b"}]},
	  {"type": "library", "name": "bash-interactive", "version": "5.2p37",
	   "properties": [{"name": "nix:store-path", "value": "/nix/store/` + h1 + `-bash-interactive-5.2p37"}]}
	]}`
	s, err := parseCycloneDX([]byte(doc))
	if err != nil {
		t.Fatalf("parseCycloneDX = %v", err)
	}
	want := []record.StorePath{
		sp(h1, "bash-interactive", "5.2p37"),
		sp(h3, "jq", "1.7.1"),
		sp(h4, "curl", "8.1"),
		sp(h2, "pi", "0.71.0"),
		{Name: "tzdata", Version: "2025b"},
		{Name: "zoneinfo", Version: "2025b"},
	}
	if !reflect.DeepEqual(s.paths, want) {
		t.Errorf("paths =\n%+v\nwant\n%+v", s.paths, want)
	}
	if s.agentVersion != "0.71.0" {
		t.Errorf("agent version = %q, want 0.71.0", s.agentVersion)
	}

	for _, bad := range []string{`[]`, `{"bomFormat": "SPDX"}`, `not json`} {
		if _, err := parseCycloneDX([]byte(bad)); err == nil {
			t.Errorf("parseCycloneDX(%s) = nil error, want one", bad)
		}
	}
}

func TestParseProvenanceOfARelease(t *testing.T) {
	p, err := parseProvenance(readTestdata(t, "provenance-release.json"))
	if err != nil {
		t.Fatalf("parseProvenance = %v", err)
	}
	want := map[string]record.Pin{
		"llm-agents": {NarHash: "sha256-EZUuKZ5+ijT08Yyq6ZgeVvLk86lZSG4+2/OKti/Y8Rk=", Override: "path:(local)"},
		"nixpkgs":    {NarHash: "sha256-AZk7BnEZI/jaf1En0y4kkE4wzlFKBP3RNboTRYm27bQ=", Override: "path:(local)"},
	}
	if p.version != "0.71.0" || !reflect.DeepEqual(p.inputs, want) {
		t.Errorf("parseProvenance = %s %+v, want 0.71.0 %+v", p.version, p.inputs, want)
	}
}

// TestParseProvenanceForms reads both ways a flake input is recorded: a
// gitCommit digest with narHash and override annotations, or the whole pin
// in one revision annotation.
func TestParseProvenanceForms(t *testing.T) {
	rev := strings.Repeat("ab", 20)
	doc := `{"buildDefinition": {"externalParameters": {"version": "1.2"}, "resolvedDependencies": [
	  {"name": "source", "digest": {"gitCommit": "` + strings.Repeat("c", 40) + `"}},
	  {"name": "flake-input:nixpkgs", "digest": {"gitCommit": "` + rev + `"}, "annotations": {"narHash": "sha256-n="}},
	  {"name": "flake-input:byhash", "annotations": {"revision": "sha256-h="}},
	  {"name": "flake-input:byrev", "annotations": {"revision": "v1.0"}},
	  {"name": "flake-input:overridden", "annotations": {"revision": "override:path:(local)"}},
	  {"name": "derivation", "uri": "file:///nix/store/x.drv"}
	]}}`
	p, err := parseProvenance([]byte(doc))
	if err != nil {
		t.Fatalf("parseProvenance = %v", err)
	}
	want := map[string]record.Pin{
		"nixpkgs":    {Rev: rev, NarHash: "sha256-n="},
		"byhash":     {NarHash: "sha256-h="},
		"byrev":      {Rev: "v1.0"},
		"overridden": {Override: "path:(local)"},
	}
	if p.version != "1.2" || !reflect.DeepEqual(p.inputs, want) {
		t.Errorf("parseProvenance = %s %+v, want 1.2 %+v", p.version, p.inputs, want)
	}
	if _, err := parseProvenance([]byte(`{"predicate": {}}`)); err == nil {
		t.Error("parseProvenance without a buildDefinition = nil error, want one")
	}
}

func TestDecodeStatement(t *testing.T) {
	body := `{"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://cyclonedx.org/bom",
	  "subject": [{"name": "r/pi", "digest": {"sha256": "` + strings.Repeat("b", 64) + `"}}], "predicate": {"x": 1}}`
	env := `{"payloadType": "application/vnd.in-toto+json", "payload": "` + base64.StdEncoding.EncodeToString([]byte(body)) + `", "signatures": []}`
	st, err := decodeStatement([]byte(env))
	if err != nil {
		t.Fatalf("decodeStatement = %v", err)
	}
	if st.PredicateType != "https://cyclonedx.org/bom" || string(st.Predicate) != `{"x": 1}` {
		t.Errorf("decodeStatement = %+v", st)
	}
	if !st.names(digest(t, "r/pi", "b")) || st.names(digest(t, "r/pi", "c")) {
		t.Error("names() does not match the subject's digest alone")
	}
	for _, bad := range []string{`x`, `{"payload": "%%%"}`, `{"payload": "` + base64.StdEncoding.EncodeToString([]byte("[")) + `"}`} {
		if _, err := decodeStatement([]byte(bad)); err == nil {
			t.Errorf("decodeStatement(%s) = nil error, want one", bad)
		}
	}
}
