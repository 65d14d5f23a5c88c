package sign

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	sigs "github.com/sigstore/cosign/v2/pkg/signature"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/nothingnesses/agent-images/internal/redact"
)

// identity is who signs: a long-lived key, or a short-lived Fulcio
// certificate for an OIDC identity. It is the one seam between the two modes.
type identity interface {
	// signer returns the key to sign with and, keyless, its certificate
	// and chain as PEM.
	signer(ctx context.Context) (sv signature.SignerVerifier, cert, chain []byte, err error)
	// verifierFor returns a verifier for sig when sig was made by this
	// identity, and nil otherwise; it decides what counts as already signed.
	verifierFor(ctx context.Context, sig oci.Signature) (signature.Verifier, error)
	// cosignArgs are the cosign CLI flags that verify exactly this identity:
	// a key, or a certificate subject and issuer, never a pattern.
	cosignArgs(ctx context.Context) ([]string, error)
	// tlogKey is what a transparency log entry records as the signer.
	tlogKey(ctx context.Context) ([]byte, error)
}

// keyIdentity signs with a cosign key, env://VAR or a KMS key.
type keyIdentity struct {
	ref    string
	sv     signature.SignerVerifier
	pubPEM []byte
}

func loadKey(ctx context.Context, ref string) (*keyIdentity, error) {
	pass := func(bool) ([]byte, error) { return []byte(os.Getenv("COSIGN_PASSWORD")), nil }
	// A KMS reference can carry credentials or a token in its URL: errors
	// name it by its public form.
	shown := redact.URL(ref)
	sv, err := sigs.SignerVerifierFromKeyRef(ctx, ref, pass, nil)
	if err != nil {
		hint := ""
		if !strings.Contains(ref, "://") || strings.HasPrefix(ref, "env://") {
			hint = " (is COSIGN_PASSWORD its password?)"
		}
		return nil, fmt.Errorf("loading signing key %s%s: %w", shown, hint, redact.URLError(err, ref))
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("reading the public half of %s: %w", shown, redact.URLError(err, ref))
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key of %s: %w", shown, err)
	}
	return &keyIdentity{ref: ref, sv: sv, pubPEM: pem}, nil
}

func (k *keyIdentity) signer(context.Context) (signature.SignerVerifier, []byte, []byte, error) {
	return k.sv, nil, nil, nil
}

func (k *keyIdentity) verifierFor(_ context.Context, sig oci.Signature) (signature.Verifier, error) {
	if c, err := sig.Cert(); err == nil && c != nil {
		return nil, nil // a keyless signature is someone else's
	}
	return k.sv, nil
}

func (k *keyIdentity) cosignArgs(context.Context) ([]string, error) {
	// The public key is what users hold; the private ref only helps the
	// person who signed. cosign derives the public key from a KMS ref.
	return []string{"--key", redact.URL(publicKeyHint(k.ref))}, nil
}

func (k *keyIdentity) tlogKey(context.Context) ([]byte, error) { return k.pubPEM, nil }

// publicKeyHint is the verify-time name of a signing key: cosign.key's public
// half is cosign.pub by convention, KMS refs verify as they are.
func publicKeyHint(ref string) string {
	if len(ref) > 4 && ref[len(ref)-4:] == ".key" {
		return ref[:len(ref)-4] + ".pub"
	}
	if len(ref) > 6 && ref[:6] == "env://" {
		return "cosign.pub"
	}
	return ref
}

// keylessIdentity signs with an ephemeral key certified by Fulcio for the
// identity in an OIDC token.
type keylessIdentity struct {
	cfg keylessConfig

	mu       sync.Mutex
	sv       signature.SignerVerifier
	cert     *x509.Certificate
	certPEM  []byte
	chainPEM []byte
	// who signs, as it appears in the certificate, and the CA it chains to:
	// known from the token and Fulcio's trust bundle before any certificate
	// is requested, so that an unchanged release asks Fulcio for nothing.
	who   *certIdentity
	roots *x509.CertPool
	inter *x509.CertPool
}

func newKeyless(ctx context.Context, cfg keylessConfig) (*keylessIdentity, error) {
	// Fetch a token now: a job without id-token: write must fail before it
	// builds anything, not after it pushed.
	if _, err := cfg.token(ctx); err != nil {
		return nil, fmt.Errorf("keyless signing: %w", err)
	}
	return &keylessIdentity{cfg: cfg}, nil
}

// certLifetimeMargin is how long before expiry a certificate is replaced:
// Fulcio's last ten minutes, and a release may sign for longer than that.
const certLifetimeMargin = 2 * time.Minute

func (k *keylessIdentity) signer(ctx context.Context) (signature.SignerVerifier, []byte, []byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cert != nil && time.Until(k.cert.NotAfter) > certLifetimeMargin {
		return k.sv, k.certPEM, k.chainPEM, nil
	}
	priv, err := cosign.GeneratePrivateKey()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generating an ephemeral key: %w", err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := k.cfg.token(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM, chainPEM, err := requestCertificate(ctx, k.cfg, sv, tok)
	if err != nil {
		return nil, nil, nil, err
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(certPEM)
	if err != nil || len(certs) == 0 {
		return nil, nil, nil, fmt.Errorf("no certificate in the answer of Fulcio at %s: %v", k.cfg.fulcioURL, err)
	}
	k.sv, k.cert, k.certPEM, k.chainPEM = sv, certs[0], certPEM, chainPEM
	who, err := identityOf(certs[0])
	if err != nil {
		return nil, nil, nil, err
	}
	k.who = who
	return sv, certPEM, chainPEM, nil
}

// trust learns who we are and which CA certifies us without asking for a
// certificate when the token says it (GitHub's job_workflow_ref, an email).
func (k *keylessIdentity) trust(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.roots != nil && k.who != nil {
		return nil
	}
	if k.roots == nil {
		roots, inter, err := fetchTrustBundle(ctx, k.cfg)
		if err != nil {
			return err
		}
		k.roots, k.inter = roots, inter
	}
	if k.who == nil {
		tok, err := k.cfg.token(ctx)
		if err != nil {
			return err
		}
		k.who = identityFromToken(tok)
	}
	return nil
}

func (k *keylessIdentity) verifierFor(ctx context.Context, sig oci.Signature) (signature.Verifier, error) {
	c, err := sig.Cert()
	if err != nil || c == nil {
		return nil, nil
	}
	if err := k.trust(ctx); err != nil {
		return nil, err
	}
	if k.who == nil {
		// The token does not say how Fulcio will name us: ask for the
		// certificate now and read the name from it.
		if _, _, _, err := k.signer(ctx); err != nil {
			return nil, err
		}
	}
	theirs, err := identityOf(c)
	if err != nil || *theirs != *k.who {
		return nil, nil
	}
	// The certificate has long expired by the next nightly run; what matters
	// is that our CA issued it, checked at the time it was valid.
	chain, _ := sig.Chain()
	inter := k.inter
	if len(chain) > 0 {
		inter = inter.Clone()
		for _, ic := range chain {
			inter.AddCert(ic)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{
		Roots: k.roots, Intermediates: inter, CurrentTime: c.NotBefore.Add(time.Second),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}); err != nil {
		return nil, nil
	}
	return signature.LoadVerifier(c.PublicKey, crypto.SHA256)
}

// cosignArgs pins the certificate's exact subject and issuer. When neither
// the token nor a certificate says who we are, it fails: a command with
// --certificate-identity-regexp .* would accept a signature by anyone.
func (k *keylessIdentity) cosignArgs(ctx context.Context) ([]string, error) {
	err := k.trust(ctx)
	if err == nil && k.who == nil {
		_, _, _, err = k.signer(ctx)
	}
	if k.who == nil {
		return nil, fmt.Errorf("the keyless signing identity is unknown, so no verify command can name it "+
			"(verify with --certificate-identity <the signing workflow's URI>@<ref> --certificate-oidc-issuer <the token's issuer>): %v", err)
	}
	return []string{"--certificate-identity", k.who.Subject, "--certificate-oidc-issuer", k.who.Issuer}, nil
}

func (k *keylessIdentity) tlogKey(ctx context.Context) ([]byte, error) {
	_, cert, _, err := k.signer(ctx)
	return cert, err
}

// certIdentity is how a Fulcio certificate names its holder.
type certIdentity struct {
	Subject string // the SAN: a workflow URI or an email
	Issuer  string // the OIDC issuer extension
}

func identityOf(c *x509.Certificate) (*certIdentity, error) {
	var subject string
	switch {
	case len(c.URIs) > 0:
		subject = c.URIs[0].String()
	case len(c.EmailAddresses) > 0:
		subject = c.EmailAddresses[0]
	default:
		return nil, errors.New("certificate names no subject (no URI or email SAN)")
	}
	issuer := (&cosign.CertExtensions{Cert: c}).GetIssuer()
	if issuer == "" {
		return nil, errors.New("certificate has no OIDC issuer extension")
	}
	return &certIdentity{Subject: subject, Issuer: issuer}, nil
}
