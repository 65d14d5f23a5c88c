package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/sigstore/fulcio/pkg/ca/ephemeralca"
	"github.com/sigstore/fulcio/pkg/config"
	fulciopb "github.com/sigstore/fulcio/pkg/generated/protobuf"
	"github.com/sigstore/fulcio/pkg/server"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/grpc/metadata"
)

// The workflow identity the test's OIDC issuer vouches for, as GitHub's does.
const (
	testWorkflowRef = "nothingnesses/agent-images/.github/workflows/release.yml@refs/heads/main"
	testIdentity    = "https://github.com/" + testWorkflowRef
	actionsBearer   = "request-token"
)

// oidcIssuer is a local OpenID provider in GitHub Actions' shape: discovery,
// a JWKS with an ephemeral key, and the Actions token-request endpoint.
type oidcIssuer struct {
	srv    *httptest.Server
	signer jose.Signer
	// workflow is the job_workflow_ref tokens name (default testWorkflowRef).
	workflow atomic.Value
}

func startOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "test"))
	if err != nil {
		t.Fatal(err)
	}
	iss := &oidcIssuer{signer: signer}
	iss.workflow.Store(testWorkflowRef)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.srv.URL,
			"jwks_uri":                              iss.srv.URL + "/jwks",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "test", Algorithm: "ES256", Use: "sig"}}})
	})
	// What ACTIONS_ID_TOKEN_REQUEST_URL answers in a job with id-token: write.
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer "+actionsBearer {
			http.Error(w, "bad bearer", http.StatusUnauthorized)
			return
		}
		tok, err := iss.token(r.URL.Query().Get("audience"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]string{"value": tok})
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

// token mints an ID token with the claims GitHub Actions puts in one.
func (i *oidcIssuer) token(audience string) (string, error) {
	now := time.Now()
	workflow := i.workflow.Load().(string)
	claims := map[string]any{
		"iss": i.srv.URL, "aud": audience, "sub": "repo:nothingnesses/agent-images:ref:refs/heads/main",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"job_workflow_ref": workflow, "job_workflow_sha": "0123456789abcdef0123456789abcdef01234567",
		"sha": "0123456789abcdef0123456789abcdef01234567", "event_name": "schedule",
		"repository": "nothingnesses/agent-images", "workflow": "release", "ref": "refs/heads/main",
		"runner_environment": "github-hosted", "repository_id": "1", "repository_owner": "nothingnesses",
		"repository_owner_id": "2", "repository_visibility": "public",
		"workflow_ref": workflow, "workflow_sha": "0123456789abcdef0123456789abcdef01234567",
		"run_id": "3", "run_attempt": "1",
	}
	return jwt.Signed(i.signer).Claims(claims).Serialize()
}

// inActions puts issuer's token endpoint in the environment, as GitHub
// Actions does for a job with id-token: write.
func inActions(t *testing.T, issuer *oidcIssuer) {
	t.Helper()
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", issuer.srv.URL+"/token?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", actionsBearer)
	t.Setenv("GITHUB_ACTIONS", "true")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// startFulcio runs the real Fulcio CA service (its gRPC server behind its
// own HTTP gateway) with an ephemeral CA, trusting issuerURL as a GitHub
// Actions issuer. It has no CT log, so certificates carry no SCT. It
// returns Fulcio's URL and its root pool.
func startFulcio(t *testing.T, issuerURL string) (string, *x509.CertPool) {
	t.Helper()
	cfg, err := config.Read(fmt.Appendf(nil, `{"OIDCIssuers":{%q:{"IssuerURL":%q,"ClientID":"sigstore","Type":"github-workflow"}}}`, issuerURL, issuerURL))
	if err != nil {
		t.Fatalf("Fulcio config: %v", err)
	}
	ca, err := ephemeralca.NewEphemeralCA()
	if err != nil {
		t.Fatal(err)
	}
	algs, err := signature.NewAlgorithmRegistryConfig([]protocommon.PublicKeyDetails{protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256})
	if err != nil {
		t.Fatal(err)
	}
	// As Fulcio's own HTTP server does, the bearer token of a request is
	// the identity token its gRPC service reads.
	mux := runtime.NewServeMux(runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
		return metadata.Pairs(server.MetadataOIDCTokenKey, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	if err := fulciopb.RegisterCAHandlerServer(t.Context(), mux, server.NewGRPCCAServer(nil, ca, algs, server.NewIssuerPool(cfg))); err != nil {
		t.Fatal(err)
	}
	// Fulcio's own server puts its configuration in every request context.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(config.With(r.Context(), cfg)))
	}))
	t.Cleanup(srv.Close)
	bundle, err := ca.TrustBundle(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	for _, chain := range bundle {
		roots.AddCert(chain[len(chain)-1])
	}
	return srv.URL, roots
}

// TestKeylessSignThenVerify goes token -> certificate -> signature ->
// verification entirely on this machine: the Actions token endpoint and OIDC
// issuer above, the real Fulcio code with an ephemeral CA, Debian's
// docker-registry; the transparency log is off.
func TestKeylessSignThenVerify(t *testing.T) {
	addr := startRegistry(t)
	ctx := t.Context()
	issuer := startOIDCIssuer(t)
	fulcioURL, roots := startFulcio(t, issuer.srv.URL)
	inActions(t, issuer)
	newSigner := func() Signer {
		s, err := New(ctx, Config{FulcioURL: fulcioURL, FulcioRoots: roots, TlogUpload: new(bool)})
		if err != nil {
			t.Fatalf("New(keyless) = %v", err)
		}
		if modeOf(s) != ModeKeyless {
			t.Fatalf("New().Mode() = %s under Actions with an OIDC endpoint, want keyless", modeOf(s))
		}
		return s
	}
	repo, _ := name.NewRepository(addr+"/agent-images/pi", name.Insecure)
	req := pushRelease(t, ctx, repo, "good")
	res, err := signRelease(ctx, newSigner(), req)
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	if want := "--certificate-identity " + testIdentity + " --certificate-oidc-issuer " + issuer.srv.URL; !strings.Contains(res.VerifyCommand, want) {
		t.Errorf("VerifyCommand = %s, want it to contain %s", res.VerifyCommand, want)
	}

	tests := []struct {
		name   string
		policy Policy
		want   string // substring of every check's failure, "" for none
	}{
		{"identity and issuer", Policy{CertIdentity: testIdentity, CertOIDCIssuer: issuer.srv.URL}, ""},
		// The same workflow at another ref is another signer.
		{"same workflow, another ref", Policy{CertIdentity: strings.TrimSuffix(testIdentity, "refs/heads/main") + "refs/heads/evil", CertOIDCIssuer: issuer.srv.URL}, "not by the given key or identity"},
		{"another workflow", Policy{CertIdentity: "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main", CertOIDCIssuer: issuer.srv.URL}, "not by the given key or identity"},
		{"another issuer", Policy{CertIdentity: testIdentity, CertOIDCIssuer: "https://token.actions.githubusercontent.com"}, "not by the given key or identity"},
		{"another CA", Policy{CertIdentity: testIdentity, CertOIDCIssuer: issuer.srv.URL, Roots: otherRoots(t)}, "not by the given key or identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			p.IgnoreTlog, p.IgnoreSCT = true, true
			if p.Roots == nil {
				p.Roots = roots
			}
			rep, err := Verify(ctx, repo.Tag("latest"), p)
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			for _, c := range rep.Commands {
				if want := "--certificate-identity " + p.CertIdentity + " --certificate-oidc-issuer " + p.CertOIDCIssuer; !strings.Contains(c, want) || strings.Contains(c, "regexp") {
					t.Errorf("printed command %s, want it to pin %s and use no pattern", c, want)
				}
			}
			for _, c := range rep.Checks {
				switch {
				case tt.want == "" && c.Err != nil:
					t.Errorf("%s %s = %v, want ok", c.Subject, c.What, c.Err)
				case tt.want != "" && c.What == "blobs":
					// Whose signature it is does not change what is there.
					if c.Err != nil {
						t.Errorf("%s blobs = %v, want every blob there", c.Subject, c.Err)
					}
				case tt.want != "" && (c.Err == nil || !strings.Contains(c.Err.Error(), tt.want)):
					t.Errorf("%s %s = %v, want an error containing %q", c.Subject, c.What, c.Err, tt.want)
				}
			}
		})
	}

	// The next run gets a new key and certificate for the same identity:
	// it must recognise the existing signatures as its own.
	before := registryState(t, ctx, repo)
	again, err := signRelease(ctx, newSigner(), req)
	if err != nil {
		t.Fatalf("second Sign = %v", err)
	}
	if !wroteNothing(req, again) {
		t.Errorf("second keyless Sign = %+v, want unchanged", again)
	}
	if after := registryState(t, ctx, repo); !maps.Equal(before, after) {
		t.Errorf("registry after the second keyless Sign = %v, want %v", after, before)
	}
}

// otherRoots is the root of a CA that issued nothing here.
func otherRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	ca, err := ephemeralca.NewEphemeralCA()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := ca.TrustBundle(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(bundle[0][len(bundle[0])-1])
	return pool
}

// TestKeylessCheck is merge's check of a part another job signed keyless:
// it holds for the same workflow identity with a new certificate, and fails
// for another workflow of the same issuer, for a key, and for an image
// nobody signed.
func TestKeylessCheck(t *testing.T) {
	addr := startRegistry(t)
	ctx := t.Context()
	issuer := startOIDCIssuer(t)
	fulcioURL, roots := startFulcio(t, issuer.srv.URL)
	inActions(t, issuer)
	newSigner := func() Signer {
		s, err := New(ctx, Config{FulcioURL: fulcioURL, FulcioRoots: roots, TlogUpload: new(bool)})
		if err != nil {
			t.Fatalf("New(keyless) = %v", err)
		}
		return s
	}
	repo, _ := name.NewRepository(addr+"/agent-images/pi", name.Insecure)
	// The build job signs the per-arch images; the merge job, a new signer
	// with its own certificate, checks them.
	built := pushRelease(t, ctx, repo, "built")
	builder := newSigner()
	for _, img := range built.Images {
		if err := signImage(ctx, builder, img); err != nil {
			t.Fatalf("SignImage = %v", err)
		}
	}
	unsigned := pushRelease(t, ctx, repo, "planted")
	merger := newSigner()
	for _, img := range built.Images {
		if err := merger.Check(ctx, img.Ref, Built{}); err != nil {
			t.Errorf("Check(%s) by the same workflow = %v, want ok", img, err)
		}
	}

	if err := newSigner().Check(ctx, unsigned.Images[0].Ref, Built{}); err == nil || !strings.Contains(err.Error(), "carries no signature by the keyless identity "+testIdentity+" (issuer "+issuer.srv.URL+")") {
		t.Errorf("Check(unsigned) = %v, want no signature by this workflow's identity and issuer", err)
	}

	issuer.workflow.Store("someone/else/.github/workflows/release.yml@refs/heads/main")
	other := newSigner()
	if err := other.Check(ctx, built.Images[0].Ref, Built{}); err == nil || !strings.Contains(err.Error(), "carries no signature by the keyless identity https://github.com/someone/else/") {
		t.Errorf("Check by another workflow = %v, want refused", err)
	}
	issuer.workflow.Store(testWorkflowRef)

	key, _ := writeKeyPair(t, t.TempDir(), "cosign", "pw")
	t.Setenv("COSIGN_PASSWORD", "pw")
	keyed, err := New(ctx, Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := keyed.Check(ctx, built.Images[0].Ref, Built{}); err == nil {
		t.Errorf("Check of a keyless signature by a key signer = nil, want refused")
	}
}
