package sign

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nothingnesses/agent-images/record"
)

// TestNewChoosesMode covers the choice New makes from flags and environment,
// and that a run which cannot sign fails in New, before anything moves.
func TestNewChoosesMode(t *testing.T) {
	key, _ := writeKeyPair(t, t.TempDir(), "cosign", "pw")
	tests := []struct {
		name     string
		opts     []Option
		env      map[string]string
		password string
		want     Mode
		wantErr  string
	}{
		{name: "off when asked", opts: []Option{Disabled()}, env: map[string]string{"GITHUB_ACTIONS": "true"}, want: ModeOff},
		{name: "key", opts: []Option{WithKey(key)}, password: "pw", want: ModeKey},
		{name: "key with the wrong password", opts: []Option{WithKey(key)}, password: "nope", wantErr: "COSIGN_PASSWORD"},
		// The KMS providers are linked in: a KMS ref reaches its provider
		// (Vault, which fails offline before any request) and is not read
		// as a file name.
		{name: "KMS key", opts: []Option{WithKey("hashivault://release")}, wantErr: "VAULT_ADDR"},
		{name: "no identity locally", wantErr: "no signing identity"},
		{name: "GitHub Actions without id-token permission", env: map[string]string{"GITHUB_ACTIONS": "true"},
			wantErr: "lacks id-token: write"},
		{name: "GitHub Actions token endpoint unreachable",
			env:     map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:1/token?x=1", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"},
			wantErr: "keyless signing"},
		{name: "keyless with a given token", opts: []Option{WithIdentityToken("a.b.c")}, want: ModeKeyless},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("COSIGN_PASSWORD", tt.password)
			t.Setenv("VAULT_ADDR", "") // keep the KMS case off the network
			getenv := func(k string) string { return tt.env[k] }
			opts := append([]Option{withGetenv(getenv), WithTransport(noRetry{})}, tt.opts...)
			s, err := New(t.Context(), opts...)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("New() = %v, want an error containing %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("New() = %v, want mode %s", err, tt.want)
			case s.Mode() != tt.want:
				t.Errorf("New().Mode() = %s, want %s", s.Mode(), tt.want)
			}
			if tt.wantErr == "no signing identity" && !errors.Is(err, ErrNoIdentity) {
				t.Errorf("New() = %v, want ErrNoIdentity", err)
			}
		})
	}
}

func TestOffReportsWithoutSigning(t *testing.T) {
	s, err := New(t.Context(), Disabled())
	if err != nil {
		t.Fatal(err)
	}
	img := localImage(t)
	if err := s.SignImage(context.Background(), img); err != nil || img.Signature != nil {
		t.Errorf("off.SignImage = %v, signature %+v, want nothing", err, img.Signature)
	}
	res, err := s.SignIndex(context.Background(), img.Ref, []*record.Image{img})
	if err != nil || res.Mode != string(ModeOff) || res.Index.Signature != "" {
		t.Errorf("off.SignIndex = %+v, %v, want a report with no signature", res, err)
	}
}

func TestCosignCommand(t *testing.T) {
	d, _ := name.NewDigest("ghcr.io/o/agent-images/pi@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	tests := []struct {
		name       string
		verb, typ  string
		args       []string
		ignoreTlog bool
		want       string
	}{
		{"key", "verify", "", []string{"--key", "cosign.pub"}, true,
			"cosign verify --key cosign.pub --insecure-ignore-tlog=true " + d.String()},
		{"keyless attestation", "verify-attestation", "cyclonedx",
			[]string{"--certificate-identity", "https://github.com/o/r/.github/workflows/release.yml@refs/heads/main", "--certificate-oidc-issuer", "https://token.actions.githubusercontent.com"}, false,
			"cosign verify-attestation --type cyclonedx --certificate-identity https://github.com/o/r/.github/workflows/release.yml@refs/heads/main --certificate-oidc-issuer https://token.actions.githubusercontent.com " + d.String()},
		{"regexp is quoted", "verify", "", []string{"--certificate-identity-regexp", "^https://github.com/o/.*$"}, false,
			"cosign verify --certificate-identity-regexp '^https://github.com/o/.*$' " + d.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CosignCommand(tt.verb, d, tt.args, tt.ignoreTlog, false, tt.typ); got != tt.want {
				t.Errorf("CosignCommand() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr string
	}{
		{"key", Policy{Key: "cosign.pub"}, ""},
		{"keyless", Policy{CertIdentity: "a", CertOIDCIssuer: "b"}, ""},
		{"nothing", Policy{}, "say whose signatures count"},
		{"both", Policy{Key: "k", CertIdentity: "a", CertOIDCIssuer: "b"}, "not both"},
		{"keyless without issuer", Policy{CertIdentityRegexp: ".*"}, "--certificate-oidc-issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.validate()
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Policy%+v.validate() = %v, want %q", tt.p, err, tt.wantErr)
			}
		})
	}
}

// noRetry sends each request once, so that a refused connection fails fast.
type noRetry struct{}

func (noRetry) RoundTrip(r *http.Request) (*http.Response, error) {
	return http.DefaultTransport.RoundTrip(r)
}

func TestFlakeInputs(t *testing.T) {
	dir := t.TempDir()
	lock := `{"root":"root","version":7,"nodes":{
	  "root":{"inputs":{"nixpkgs":"nixpkgs","llm-agents":"llm-agents","utils":["llm-agents","utils"]}},
	  "nixpkgs":{"locked":{"rev":"89abcdef0123456789abcdef0123456789abcdef","narHash":"sha256-x"}},
	  "llm-agents":{"locked":{"narHash":"sha256-y"}}}}`
	if err := os.WriteFile(filepath.Join(dir, "flake.lock"), []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		dir       string
		overrides map[string]string
		want      map[string]string
	}{
		{"locked", dir, nil, map[string]string{"nixpkgs": "89abcdef0123456789abcdef0123456789abcdef", "llm-agents": "sha256-y"}},
		{"overridden", dir, map[string]string{"nixpkgs": "path:./standin"}, map[string]string{"nixpkgs": "override:path:./standin", "llm-agents": "sha256-y"}},
		{"no lock file", t.TempDir(), map[string]string{"nixpkgs": "path:x"}, map[string]string{"nixpkgs": "override:path:x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FlakeInputs(tt.dir, tt.overrides)
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("FlakeInputs() = %v, %v, want %v", got, err, tt.want)
			}
		})
	}
}
