package sign

import (
	"context"
	"crypto/x509"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/nothingnesses/agent-images/flake"
)

// TestNewChoosesMode covers the choice New makes from flags and environment,
// and that a run which cannot sign fails in New, before anything moves.
func TestNewChoosesMode(t *testing.T) {
	key, _ := writeKeyPair(t, t.TempDir(), "cosign", "pw")
	tests := []struct {
		name     string
		config   Config
		env      map[string]string
		password string
		want     Mode
		wantErr  string
	}{
		{name: "off when asked", config: Config{Off: true}, env: map[string]string{"GITHUB_ACTIONS": "true"}, want: ModeOff},
		{name: "key", config: Config{Key: key}, password: "pw", want: ModeKey},
		{name: "key with the wrong password", config: Config{Key: key}, password: "nope", wantErr: "COSIGN_PASSWORD"},
		// The KMS providers are linked in: a KMS ref reaches its provider
		// (Vault, which fails offline before any request) and is not read
		// as a file name.
		{name: "KMS key", config: Config{Key: "hashivault://release"}, wantErr: "VAULT_ADDR"},
		{name: "no identity locally", wantErr: "no signing identity"},
		{name: "GitHub Actions without id-token permission", env: map[string]string{"GITHUB_ACTIONS": "true"},
			wantErr: "lacks id-token: write"},
		{name: "GitHub Actions token endpoint unreachable",
			env:     map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:1/token?x=1", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"},
			wantErr: "keyless signing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("COSIGN_PASSWORD", tt.password)
			t.Setenv("VAULT_ADDR", "") // keep the KMS case off the network
			for _, k := range []string{"GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"} {
				t.Setenv(k, tt.env[k])
			}
			s, err := New(t.Context(), tt.config)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("New() = %v, want an error containing %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("New() = %v, want mode %s", err, tt.want)
			case modeOf(s) != tt.want:
				t.Errorf("New().Mode() = %s, want %s", modeOf(s), tt.want)
			}
			if tt.wantErr == "no signing identity" && !errors.Is(err, ErrNoIdentity) {
				t.Errorf("New() = %v, want ErrNoIdentity", err)
			}
		})
	}
}

func TestOffReportsWithoutSigning(t *testing.T) {
	s, err := New(t.Context(), Config{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	img := localImage(t)
	if sig, err := s.SignImage(t.Context(), img.Ref, img, testAgent); err != nil || sig != nil {
		t.Errorf("off.SignImage = %+v, %v, want nothing", sig, err)
	}
	res, err := s.SignIndex(t.Context(), img.Ref, []name.Digest{img.Ref})
	if err != nil || res.Mode != string(ModeOff) || res.Index.Signature != "" {
		t.Errorf("off.SignIndex = %+v, %v, want a report with no signature", res, err)
	}
}

func TestCosignCommand(t *testing.T) {
	d, _ := name.NewDigest("ghcr.io/o/agent-images/pi@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	const issuer = "https://token.actions.githubusercontent.com"
	tests := []struct {
		name      string
		verb, typ string
		policy    Policy
		want      string
	}{
		{"key", "verify", "", Policy{Key: "cosign.pub", IgnoreTlog: true},
			"cosign verify --key cosign.pub --insecure-ignore-tlog=true " + d.String()},
		{"keyless attestation", "verify-attestation", "cyclonedx",
			Policy{CertIdentity: "https://github.com/o/r/.github/workflows/release.yml@refs/heads/main", CertOIDCIssuer: issuer},
			"cosign verify-attestation --type cyclonedx --certificate-identity https://github.com/o/r/.github/workflows/release.yml@refs/heads/main --certificate-oidc-issuer " + issuer + " " + d.String()},
		{"shell syntax is quoted", "verify", "", Policy{CertIdentity: "https://github.com/o/r/x.yml@refs/heads/$(id)", CertOIDCIssuer: issuer},
			"cosign verify --certificate-identity 'https://github.com/o/r/x.yml@refs/heads/$(id)' --certificate-oidc-issuer " + issuer + " " + d.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.cosignCommand(tt.verb, d, tt.typ); got != tt.want {
				t.Errorf("cosignCommand() = %s, want %s", got, tt.want)
			}
		})
	}
	insecure, _ := name.NewDigest("127.0.0.1:5000/pi@"+d.DigestStr(), name.Insecure)
	if got := (Policy{Key: "cosign.pub"}).cosignCommand("verify", insecure, ""); !strings.HasSuffix(got, " --allow-insecure-registry "+insecure.String()) {
		t.Errorf("cosignCommand(plain-HTTP registry) = %s, want --allow-insecure-registry", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want error
	}{
		{"key", Policy{Key: "cosign.pub"}, nil},
		{"keyless", Policy{CertIdentity: "a", CertOIDCIssuer: "b"}, nil},
		{"nothing", Policy{}, ErrNoSigner},
		{"both", Policy{Key: "k", CertIdentity: "a", CertOIDCIssuer: "b"}, ErrKeyAndKeyless},
		{"keyless without issuer", Policy{CertIdentity: "a"}, ErrNoCertIssuer},
		{"keyless without identity", Policy{CertOIDCIssuer: "b"}, ErrNoCertIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Policy%+v.Validate() = %v, want %v", tt.p, err, tt.want)
			}
		})
	}
}

// TestKeylessCommandNeverWildcard: when neither the token nor Fulcio says
// who signs, no policy is made up, so no verify command and no check of
// what is signed already; a pattern would accept anyone.
func TestKeylessCommandNeverWildcard(t *testing.T) {
	k := &keylessIdentity{
		token:  func(context.Context) (string, error) { return "", errors.New("no token here") },
		fulcio: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: "http://127.0.0.1:1"}),
		Config: Config{FulcioRoots: x509.NewCertPool()},
	}
	p, err := k.policy(t.Context())
	if err == nil || p.CertIdentity != "" {
		t.Fatalf("policy() = %+v, %v, want no identity and an error", p, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "--certificate-identity <") || !strings.Contains(msg, "--certificate-oidc-issuer") || strings.Contains(msg, "regexp") {
		t.Errorf("policy() error = %q, want it to name --certificate-identity and --certificate-oidc-issuer, and no pattern", msg)
	}
	if got := (&signer{id: k}).describe(t.Context()); got != "this workflow's keyless identity" {
		t.Errorf("describe() = %q, want no identity named", got)
	}
}

// TestFlakeInputs: inputs are pinned by what the lock says Nix fetched; an
// override adds only its reference's public form, never userinfo, a query
// or a local path, and one the lock does not pin is recorded by that alone.
func TestFlakeInputs(t *testing.T) {
	// As nix flake metadata reports it with llm-agents overridden.
	lock := []byte(`{"root":"root","version":7,"nodes":{
	  "root":{"inputs":{"nixpkgs":"nixpkgs","llm-agents":"llm-agents","utils":["llm-agents","utils"]}},
	  "nixpkgs":{"locked":{"rev":"89abcdef0123456789abcdef0123456789abcdef","narHash":"sha256-x"}},
	  "llm-agents":{"locked":{"narHash":"sha256-y","path":"/tmp/tok=ghp_FAKE/x","type":"path"}}}}`)
	locked, err := flake.LockedInputs(lock)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		lock      map[string]flake.LockedInput
		overrides map[string]string
		want      map[string]FlakeInput
	}{
		{"locked", locked, nil, map[string]FlakeInput{
			"nixpkgs":    {Rev: "89abcdef0123456789abcdef0123456789abcdef", NarHash: "sha256-x"},
			"llm-agents": {NarHash: "sha256-y"}}},
		{"local override", locked, map[string]string{"llm-agents": "path:/tmp/tok=ghp_FAKE/x"}, map[string]FlakeInput{
			"nixpkgs":    {Rev: "89abcdef0123456789abcdef0123456789abcdef", NarHash: "sha256-x"},
			"llm-agents": {NarHash: "sha256-y", Override: "path:(local)"}}},
		{"override with credentials, not pinned", locked, map[string]string{"extra": "git+https://user:TOKEN@git.example.com/o/r?ref=main&t=SECRET"}, map[string]FlakeInput{
			"nixpkgs":    {Rev: "89abcdef0123456789abcdef0123456789abcdef", NarHash: "sha256-x"},
			"llm-agents": {NarHash: "sha256-y"},
			"extra":      {Override: "git+https://git.example.com/o/r"}}},
		{"no lock", nil, map[string]string{"nixpkgs": "github:NixOS/nixpkgs?access_token=ghp_FAKE"}, map[string]FlakeInput{
			"nixpkgs": {Override: "github:NixOS/nixpkgs"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FlakeInputs(tt.lock, tt.overrides); !maps.Equal(got, tt.want) {
				t.Errorf("FlakeInputs() = %v, want %v", got, tt.want)
			}
		})
	}
}
