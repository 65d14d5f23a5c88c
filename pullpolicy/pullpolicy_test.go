package pullpolicy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ReleaseWorkflow is this project's keyless release identity: the nightly
// release workflow on main, as GitHub's OIDC issuer names it.
const ReleaseWorkflow = "https://github.com/nothingnesses/agent-images/.github/workflows/release.yml@refs/heads/main"

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./pullpolicy -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./pullpolicy -update rewrites it):\n%s", name, got)
	}
}

func testKey(t *testing.T) *Signer {
	t.Helper()
	s, err := PublicKey(readFile(t, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func workflowSigner(t *testing.T) *Signer {
	t.Helper()
	s, err := KeylessWorkflow(t.Context(), Workflow{
		Identity:    ReleaseWorkflow,
		Issuer:      GitHubIssuer,
		FulcioRoots: readFile(t, "fulcio-roots.pem"),
		RekorKeys:   [][]byte{readFile(t, "rekor.pub")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGenerateGolden(t *testing.T) {
	tests := []struct {
		name   string
		signer func(*testing.T) *Signer
		base   []byte
	}{
		{name: "key", signer: testKey},
		{name: "keyless", signer: workflowSigner},
		{name: "key-base", signer: testKey, base: readFile(t, "base-policy.json")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Generate("ghcr.io/nothingnesses/agent-images", tc.signer(t), tc.base)
			if err != nil {
				t.Fatalf("Generate() error = %v", err)
			}
			golden(t, tc.name+".policy.json", files.Policy)
			golden(t, "registries.d.yaml", files.RegistriesD)
			if files.RegistriesDName != "ghcr.io-nothingnesses-agent-images.yaml" {
				t.Errorf("RegistriesDName = %q", files.RegistriesDName)
			}
		})
	}
}

// TestGenerateRequirement reads the policy back and checks what a
// containers/image reader sees: the prefix demands a sigstore signature by
// the signer, matched against the repository, with keys as base64 PEM.
func TestGenerateRequirement(t *testing.T) {
	files, err := Generate("127.0.0.1:5000/agent-images", testKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Default    []map[string]any                       `json:"default"`
		Transports map[string]map[string][]map[string]any `json:"transports"`
	}
	if err := json.Unmarshal(files.Policy, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Default) != 1 || p.Default[0]["type"] != "reject" {
		t.Errorf("default = %v, want reject", p.Default)
	}
	reqs := p.Transports["docker"]["127.0.0.1:5000/agent-images"]
	if len(reqs) != 1 {
		t.Fatalf("docker scope has %d requirements, want 1: %v", len(reqs), p.Transports["docker"])
	}
	r := reqs[0]
	if r["type"] != "sigstoreSigned" {
		t.Errorf("type = %v, want sigstoreSigned", r["type"])
	}
	key, _ := base64.StdEncoding.DecodeString(r["keyData"].(string))
	if !bytes.Equal(key, bytes.TrimSpace(readFile(t, "cosign.pub"))) {
		t.Errorf("keyData decodes to %q, want the public key", key)
	}
	if id := r["signedIdentity"].(map[string]any); id["type"] != "matchRepository" {
		t.Errorf("signedIdentity = %v, want matchRepository", id)
	}
	for _, tr := range []string{"docker-archive", "oci-archive", "containers-storage"} {
		if got := p.Transports[tr][""]; len(got) != 1 || got[0]["type"] != "insecureAcceptAnything" {
			t.Errorf("transport %s = %v, want local images accepted", tr, got)
		}
	}
	if !strings.Contains(string(files.RegistriesD), "127.0.0.1:5000/agent-images:\n    use-sigstore-attachments: true\n") {
		t.Errorf("registries.d entry lacks use-sigstore-attachments for the prefix:\n%s", files.RegistriesD)
	}
}

// TestGenerateBaseKeepsOthers: with a base, every other scope and the
// default stay; an entry for the same prefix is replaced.
func TestGenerateBaseKeepsOthers(t *testing.T) {
	base := []byte(`{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"docker.io/library/busybox":[{"type":"insecureAcceptAnything"}],"ghcr.io/nothingnesses/agent-images":[{"type":"insecureAcceptAnything"}]},"dir":{"":[{"type":"insecureAcceptAnything"}]}}}`)
	files, err := Generate("ghcr.io/nothingnesses/agent-images", testKey(t), base)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(files.Policy, &p); err != nil {
		t.Fatal(err)
	}
	if d := p["default"].([]any)[0].(map[string]any)["type"]; d != "insecureAcceptAnything" {
		t.Errorf("default = %v, want the base's kept", d)
	}
	docker := p["transports"].(map[string]any)["docker"].(map[string]any)
	if _, ok := docker["docker.io/library/busybox"]; !ok {
		t.Errorf("docker.io/library/busybox scope dropped")
	}
	if typ := docker["ghcr.io/nothingnesses/agent-images"].([]any)[0].(map[string]any)["type"]; typ != "sigstoreSigned" {
		t.Errorf("the prefix's entry = %v, want it replaced by sigstoreSigned", typ)
	}
	if _, ok := p["transports"].(map[string]any)["dir"]; !ok {
		t.Errorf("dir transport dropped")
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		base    []byte
		wantErr string
	}{
		{name: "no prefix", prefix: "", wantErr: "no registry prefix"},
		{name: "short name", prefix: "nothingnesses/agent-images", wantErr: "must start with a registry host"},
		{name: "tag", prefix: "ghcr.io/nothingnesses/agent-images:latest", wantErr: "must not carry a tag"},
		{name: "digest", prefix: "ghcr.io/x@sha256:0000", wantErr: "without a trailing slash, tag or digest"},
		{name: "trailing slash", prefix: "ghcr.io/x/", wantErr: "trailing slash"},
		{name: "upper case", prefix: "ghcr.io/Nothingnesses", wantErr: "not a repository namespace"},
		{name: "base empty", prefix: "ghcr.io/x", base: []byte(" \n"), wantErr: "the base policy is empty"},
		{name: "base not JSON", prefix: "ghcr.io/x", base: []byte("default: reject"), wantErr: "reading the base policy"},
		{name: "base not a policy", prefix: "ghcr.io/x", base: []byte(`{"transports":{}}`), wantErr: `has no "default"`},
		// The most specific scope wins: a base that accepts anything for
		// one agent under the prefix would let unsigned images through
		// while the tool said they would be refused.
		{name: "base scope under the prefix", prefix: "ghcr.io/x", base: []byte(`{"default":[{"type":"reject"}],"transports":{"docker":{"ghcr.io/x/pi":[{"type":"insecureAcceptAnything"}]}}}`), wantErr: `scope "ghcr.io/x/pi" is under ghcr.io/x`},
		{name: "base tag scope under the prefix", prefix: "ghcr.io/x", base: []byte(`{"default":[{"type":"reject"}],"transports":{"docker":{"ghcr.io/x/pi:latest":[{"type":"insecureAcceptAnything"}]}}}`), wantErr: `scope "ghcr.io/x/pi:latest"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(tc.prefix, testKey(t), tc.base)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Generate(%q) error = %v, want one containing %q", tc.prefix, err, tc.wantErr)
			}
		})
	}
	if _, err := Generate("ghcr.io/x", nil, nil); err == nil {
		t.Errorf("Generate without a signer succeeded")
	}
	if _, err := Generate("localhost:5000", testKey(t), nil); err != nil {
		t.Errorf("Generate(registry only) error = %v, want it accepted", err)
	}
}

func TestSignerErrors(t *testing.T) {
	if _, err := PublicKey([]byte("not a key")); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("PublicKey(garbage) error = %v", err)
	}
	good := Workflow{Identity: ReleaseWorkflow, Issuer: GitHubIssuer, FulcioRoots: readFile(t, "fulcio-roots.pem"), RekorKeys: [][]byte{readFile(t, "rekor.pub")}}
	tests := []struct {
		name    string
		edit    func(*Workflow)
		wantErr string
	}{
		{name: "identity not a workflow", edit: func(w *Workflow) { w.Identity = "release@example.com" }, wantErr: "is not a workflow at a ref"},
		{name: "identity without ref", edit: func(w *Workflow) { w.Identity = "https://github.com/o/r/.github/workflows/release.yml" }, wantErr: "is not a workflow at a ref"},
		{name: "issuer", edit: func(w *Workflow) { w.Issuer = "token.actions.githubusercontent.com" }, wantErr: "not an https URL"},
		{name: "roots not PEM", edit: func(w *Workflow) { w.FulcioRoots = []byte("x") }, wantErr: "Fulcio CA certificates"},
		{name: "no rekor key", edit: func(w *Workflow) { w.RekorKeys = nil }, wantErr: "needs the Rekor public key"},
		{name: "rekor key not PEM", edit: func(w *Workflow) { w.RekorKeys = [][]byte{[]byte("x")} }, wantErr: "Rekor public key 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := good
			w.RekorKeys = append([][]byte(nil), good.RekorKeys...)
			tc.edit(&w)
			_, err := KeylessWorkflow(t.Context(), w)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("KeylessWorkflow() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestWriteNeverOverwrites(t *testing.T) {
	files, err := Generate("ghcr.io/x", testKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policy, reg, err := files.Write(dir)
	if err != nil {
		t.Fatalf("Write() error = %v", err)
	}
	if policy != filepath.Join(dir, "policy.json") || reg != filepath.Join(dir, "registries.d", "ghcr.io-x.yaml") {
		t.Errorf("Write() = %s, %s", policy, reg)
	}
	if err := os.WriteFile(policy, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := files.Write(dir); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second Write() error = %v, want one saying the file exists", err)
	}
	if b, _ := os.ReadFile(policy); string(b) != "mine" {
		t.Errorf("Write() overwrote %s", policy)
	}
}
