package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/providers"
	_ "github.com/sigstore/cosign/v2/pkg/providers/github" // the GitHub Actions OIDC token
	sigs "github.com/sigstore/cosign/v2/pkg/signature"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	// The KMS providers cosign's key loader dispatches to by URI scheme
	// (awskms://, azurekms://, gcpkms://, hashivault://). cosign's CLI links
	// them the same way; without them a KMS key would be read as a file name.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"

	"github.com/nothingnesses/agent-images/internal/redact"
	"github.com/nothingnesses/agent-images/internal/transport"
)

// identity is who signs: a long-lived key, or short-lived Fulcio
// certificates for an OIDC identity. It is the one seam between the modes.
type identity interface {
	signer(ctx context.Context) (*signingKey, error)
	// policy is what this identity's signatures verify under: the key, or
	// the exact certificate identity and issuer under the CA that certifies
	// it. It decides what counts as signed already, and what a merge accepts.
	policy(ctx context.Context) (Policy, error)
}

// signingKey is what signs: a key and, keyless, its certificate and chain
// as PEM.
type signingKey struct {
	signature.SignerVerifier
	cert, chain []byte
}

// keyIdentity signs with a cosign key file, env://VAR key or KMS key.
type keyIdentity struct {
	signingKey
	public string // how users name the public key, without secrets
}

func loadKey(ctx context.Context, ref string) (*keyIdentity, error) {
	pass := func(bool) ([]byte, error) { return []byte(os.Getenv("COSIGN_PASSWORD")), nil }
	// A KMS ref can carry a token in its URL: errors name it by its public form.
	shown := redact.URL(ref)
	sv, err := sigs.SignerVerifierFromKeyRef(ctx, ref, pass, nil)
	if err != nil {
		hint := ""
		if !strings.Contains(ref, "://") || strings.HasPrefix(ref, "env://") {
			hint = " (is COSIGN_PASSWORD its password?)"
		}
		return nil, fmt.Errorf("loading signing key %s%s: %w", shown, hint, redact.URLError(err, ref))
	}
	// A KMS key is reached here, so that a key that cannot sign fails now.
	if _, err := sv.PublicKey(); err != nil {
		return nil, fmt.Errorf("reading the public half of %s: %w", shown, redact.URLError(err, ref))
	}
	return &keyIdentity{signingKey: signingKey{SignerVerifier: sv}, public: redact.URL(publicKeyHint(ref))}, nil
}

func (k *keyIdentity) signer(context.Context) (*signingKey, error) { return &k.signingKey, nil }

// policy checks signatures with the key itself. The transparency log is
// not asked: a key's signatures need no log entry to be its own.
func (k *keyIdentity) policy(context.Context) (Policy, error) {
	return Policy{Key: k.public, IgnoreTlog: true, verifier: k.SignerVerifier}, nil
}

// publicKeyHint is the verify-time name of a signing key: cosign.key's public
// half is cosign.pub by convention, KMS refs verify as they are.
func publicKeyHint(ref string) string {
	switch {
	case strings.HasSuffix(ref, ".key"):
		return strings.TrimSuffix(ref, ".key") + ".pub"
	case strings.HasPrefix(ref, "env://"):
		return "cosign.pub"
	}
	return ref
}

// keylessIdentity signs with an ephemeral key that Fulcio certifies for the
// identity in an OIDC token, through sigstore-go's Fulcio client.
type keylessIdentity struct {
	Config // FulcioURL, FulcioRoots (nil: Sigstore's, from TUF), RekorURL ("": no log)
	token  func(context.Context) (string, error)
	fulcio sgsign.CertificateProvider

	mu   sync.Mutex
	key  *signingKey
	cert *x509.Certificate
	// who signs, as the certificate names it: known from the token before
	// any certificate is asked for, so that an unchanged release asks
	// Fulcio for nothing.
	who     *cosign.Identity
	trusted root.TrustedMaterial
}

func newKeyless(ctx context.Context, c Config) (*keylessIdentity, error) {
	k := &keylessIdentity{Config: c, token: oidcToken,
		fulcio: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: strings.TrimSuffix(c.FulcioURL, "/"), Transport: transport.New()})}
	// Fetch a token now: a job without id-token: write must fail before it
	// builds anything, not after it pushed.
	if _, err := k.token(ctx); err != nil {
		return nil, fmt.Errorf("keyless signing: %w", err)
	}
	return k, nil
}

// oidcToken asks the ambient OIDC provider (GitHub Actions) for a token
// with the audience Fulcio expects.
func oidcToken(ctx context.Context) (string, error) {
	tok, err := providers.Provide(ctx, "sigstore")
	if err == nil && tok == "" {
		err = errors.New("the OIDC token provider returned an empty token")
	}
	if err != nil {
		return "", fmt.Errorf("requesting an OIDC token: %w", err)
	}
	return tok, nil
}

// certLifetimeMargin is how long before expiry a certificate is replaced:
// Fulcio's last ten minutes, and a release may sign for longer than that.
const certLifetimeMargin = 2 * time.Minute

func (k *keylessIdentity) signer(ctx context.Context) (*signingKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.certified(ctx)
}

// certified is the key Fulcio certified, asking for a new one near the end
// of its certificate's life. k.mu is held.
func (k *keylessIdentity) certified(ctx context.Context) (*signingKey, error) {
	if k.cert != nil && time.Until(k.cert.NotAfter) > certLifetimeMargin {
		return k.key, nil
	}
	if err := k.trust(); err != nil {
		return nil, err
	}
	sv, _, err := signature.NewDefaultECDSASignerVerifier()
	if err != nil {
		return nil, fmt.Errorf("generating an ephemeral key: %w", err)
	}
	tok, err := k.token(ctx)
	if err != nil {
		return nil, err
	}
	der, err := k.fulcio.GetCertificate(ctx, fulcioKey{sv}, &sgsign.CertificateProviderOptions{IDToken: tok})
	if err != nil {
		return nil, fmt.Errorf("requesting a signing certificate from %s: %w", k.FulcioURL, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("reading the certificate of Fulcio at %s: %w", k.FulcioURL, err)
	}
	// The chain is what the certificate verifies through, checked at its
	// issue as cosign checks it: one that does not is refused now.
	var chains [][]*x509.Certificate
	if k.FulcioRoots != nil {
		chains, err = cosign.TrustedCert(cert, k.FulcioRoots, k.FulcioIntermediates)
	} else {
		chains, err = verify.VerifyLeafCertificate(cert.NotBefore, cert, k.trusted)
	}
	if err != nil {
		return nil, fmt.Errorf("the certificate of Fulcio at %s is not issued under the trusted CA "+
			"(the given roots, else Sigstore's public ones): %w", k.FulcioURL, err)
	}
	who, err := identityOf(cert)
	if err != nil {
		return nil, err
	}
	chainPEM, err := cryptoutils.MarshalCertificatesToPEM(chains[0][1:])
	if err != nil {
		return nil, err
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		return nil, err
	}
	k.key, k.cert, k.who = &signingKey{sv, certPEM, chainPEM}, cert, who
	return k.key, nil
}

// trust loads Sigstore's trusted root, once, unless roots were given. k.mu
// is held.
func (k *keylessIdentity) trust() error {
	if k.FulcioRoots != nil || k.trusted != nil {
		return nil
	}
	tm, err := cosign.TrustedRoot()
	if err != nil {
		return fmt.Errorf("loading the Sigstore trusted root: %w", err)
	}
	k.trusted = tm
	return nil
}

// policy pins the certificate's exact subject and issuer, as the token
// says it (GitHub's job_workflow_ref, an email), else as a certificate
// does. When neither says who signs, it fails: a pattern would accept a
// signature by anyone.
func (k *keylessIdentity) policy(ctx context.Context) (Policy, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.trust()
	if err == nil && k.who == nil {
		var tok string
		if tok, err = k.token(ctx); err == nil {
			if k.who = identityFromToken(tok); k.who == nil {
				_, err = k.certified(ctx)
			}
		}
	}
	if err != nil {
		return Policy{}, fmt.Errorf("the keyless signing identity is unknown, so nothing can be checked against it "+
			"(cosign verifies it with --certificate-identity <the signing workflow's URI>@<ref> --certificate-oidc-issuer <the token's issuer>): %w", err)
	}
	return Policy{
		CertIdentity: k.who.Subject, CertOIDCIssuer: k.who.Issuer,
		Roots: k.FulcioRoots, Intermediates: k.FulcioIntermediates, trusted: k.trusted,
		// Without a log entry, the certificate's time is all there is.
		IgnoreTlog: k.RekorURL == "",
		IgnoreSCT:  k.FulcioRoots != nil,
	}, nil
}

// fulcioKey is an ECDSA P-256 key as sigstore-go's Fulcio client takes it.
type fulcioKey struct{ signature.SignerVerifier }

func (fulcioKey) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}
func (fulcioKey) GetHint() []byte         { return nil }
func (fulcioKey) GetKeyAlgorithm() string { return "ECDSA" }
func (fulcioKey) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

func (k fulcioKey) GetPublicKey() crypto.PublicKey {
	pub, _ := k.PublicKey()
	return pub
}

func (k fulcioKey) GetPublicKeyPem() (string, error) {
	pem, err := cryptoutils.MarshalPublicKeyToPEM(k.GetPublicKey())
	return string(pem), err
}

func (k fulcioKey) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	sig, err := k.SignMessage(bytes.NewReader(data))
	digest := sha256.Sum256(data)
	return sig, digest[:], err
}

// identityOf is how a Fulcio certificate names its holder: its SAN (a
// workflow URI or an email) and the OIDC issuer extension.
func identityOf(c *x509.Certificate) (*cosign.Identity, error) {
	sum, err := certificate.SummarizeCertificate(c)
	if err != nil {
		return nil, fmt.Errorf("reading who the certificate names: %w", err)
	}
	if sum.Extensions.Issuer == "" {
		return nil, errors.New("certificate has no OIDC issuer extension")
	}
	return &cosign.Identity{Subject: sum.SubjectAlternativeName, Issuer: sum.Extensions.Issuer}, nil
}

// identityFromToken predicts the identity Fulcio will certify, for the
// token kinds whose mapping is fixed; nil when it cannot tell. The token's
// signature is not checked: Fulcio checks it, and a wrong prediction only
// means that nothing already signed is recognised as ours.
func identityFromToken(tok string) *cosign.Identity {
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA})
	var claims struct {
		Issuer   string `json:"iss"`
		Workflow string `json:"job_workflow_ref"`
		Email    string `json:"email"`
	}
	if err != nil || parsed.UnsafeClaimsWithoutVerification(&claims) != nil || claims.Issuer == "" {
		return nil
	}
	switch {
	case claims.Workflow != "":
		return &cosign.Identity{Subject: "https://github.com/" + claims.Workflow, Issuer: claims.Issuer}
	case claims.Email != "":
		return &cosign.Identity{Subject: claims.Email, Issuer: claims.Issuer}
	}
	return nil
}
