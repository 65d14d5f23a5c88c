package sign

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

type keylessConfig struct {
	token     func(context.Context) (string, error)
	fulcioURL string
	transport http.RoundTripper
}

// tokenSource returns a fixed token, or asks the GitHub Actions OIDC endpoint
// for a fresh one with the audience Fulcio expects.
func tokenSource(fixed string, getenv func(string) string, rt http.RoundTripper) func(context.Context) (string, error) {
	if fixed != "" {
		return func(context.Context) (string, error) { return fixed, nil }
	}
	return func(ctx context.Context) (string, error) {
		reqURL, bearer := getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
		if reqURL == "" || bearer == "" {
			return "", fmt.Errorf("%w (ACTIONS_ID_TOKEN_REQUEST_URL or _TOKEN is unset)", ErrNoIdentity)
		}
		u, err := url.Parse(reqURL)
		if err != nil {
			return "", fmt.Errorf("parsing ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
		}
		q := u.Query()
		q.Set("audience", "sigstore")
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "bearer "+bearer)
		var out struct {
			Value string `json:"value"`
		}
		if err := doJSON(rt, req, http.StatusOK, &out); err != nil {
			return "", fmt.Errorf("requesting the GitHub Actions OIDC token: %w", err)
		}
		if out.Value == "" {
			return "", errors.New("the GitHub Actions OIDC endpoint returned an empty token")
		}
		return out.Value, nil
	}
}

// tokenClaims reads a JWT's claims without checking its signature: Fulcio
// checks it; we only need to know which claim it will certify.
func tokenClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("the OIDC token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("decoding the OIDC token: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("decoding the OIDC token: %w", err)
	}
	return claims, nil
}

// identityFromToken predicts the identity Fulcio will certify, for the
// token kinds whose mapping is fixed; nil when it cannot tell.
func identityFromToken(tok string) *certIdentity {
	claims, err := tokenClaims(tok)
	if err != nil {
		return nil
	}
	str := func(k string) string { s, _ := claims[k].(string); return s }
	switch {
	case str("job_workflow_ref") != "" && str("iss") != "":
		return &certIdentity{Subject: "https://github.com/" + str("job_workflow_ref"), Issuer: str("iss")}
	case str("email") != "" && str("iss") != "":
		return &certIdentity{Subject: str("email"), Issuer: str("iss")}
	}
	return nil
}

// challengeClaim is what proves possession of the key: Fulcio checks a
// signature over the email for email identities and over sub otherwise.
func challengeClaim(tok string) (string, error) {
	claims, err := tokenClaims(tok)
	if err != nil {
		return "", err
	}
	if e, _ := claims["email"].(string); e != "" {
		return e, nil
	}
	if s, _ := claims["sub"].(string); s != "" {
		return s, nil
	}
	return "", errors.New("the OIDC token has neither an email nor a sub claim")
}

// requestCertificate asks Fulcio (its v2 API) to certify sv's public key for
// the token's identity.
func requestCertificate(ctx context.Context, cfg keylessConfig, sv signature.SignerVerifier, tok string) (cert, chain []byte, err error) {
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, nil, err
	}
	claim, err := challengeClaim(tok)
	if err != nil {
		return nil, nil, err
	}
	proof, err := sv.SignMessage(strings.NewReader(claim))
	if err != nil {
		return nil, nil, fmt.Errorf("signing the proof of possession: %w", err)
	}
	body, err := json.Marshal(map[string]any{
		"credentials": map[string]string{"oidcIdentityToken": tok},
		"publicKeyRequest": map[string]any{
			"publicKey":         map[string]string{"algorithm": "ECDSA", "content": string(pubPEM)},
			"proofOfPossession": proof, // []byte marshals as base64, as protobuf JSON wants
		},
	})
	if err != nil {
		return nil, nil, err
	}
	endpoint := strings.TrimSuffix(cfg.fulcioURL, "/") + "/api/v2/signingCert"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		Embedded *struct {
			Chain struct {
				Certificates []string `json:"certificates"`
			} `json:"chain"`
		} `json:"signedCertificateEmbeddedSct"`
		Detached *struct {
			Chain struct {
				Certificates []string `json:"certificates"`
			} `json:"chain"`
		} `json:"signedCertificateDetachedSct"`
	}
	if err := doJSON(cfg.transport, req, 0, &out); err != nil {
		return nil, nil, fmt.Errorf("requesting a signing certificate from %s: %w", cfg.fulcioURL, err)
	}
	var certs []string
	switch {
	case out.Embedded != nil:
		certs = out.Embedded.Chain.Certificates
	case out.Detached != nil:
		certs = out.Detached.Chain.Certificates
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("no certificate in the answer of Fulcio at %s", cfg.fulcioURL)
	}
	return []byte(certs[0]), []byte(strings.Join(certs[1:], "")), nil
}

// fetchTrustBundle reads the CA chains Fulcio issues under.
func fetchTrustBundle(ctx context.Context, cfg keylessConfig) (roots, inter *x509.CertPool, err error) {
	endpoint := strings.TrimSuffix(cfg.fulcioURL, "/") + "/api/v2/trustBundle"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Chains []struct {
			Certificates []string `json:"certificates"`
		} `json:"chains"`
	}
	if err := doJSON(cfg.transport, req, http.StatusOK, &out); err != nil {
		return nil, nil, fmt.Errorf("reading Fulcio's trust bundle from %s: %w", cfg.fulcioURL, err)
	}
	roots, inter = x509.NewCertPool(), x509.NewCertPool()
	for _, ch := range out.Chains {
		for i, p := range ch.Certificates {
			certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(p))
			if err != nil {
				return nil, nil, fmt.Errorf("parsing Fulcio's trust bundle: %w", err)
			}
			for _, c := range certs {
				if i == len(ch.Certificates)-1 {
					roots.AddCert(c)
				} else {
					inter.AddCert(c)
				}
			}
		}
	}
	return roots, inter, nil
}

// doJSON sends req and decodes a JSON answer; want 0 accepts any 2xx.
func doJSON(rt http.RoundTripper, req *http.Request, want int, out any) error {
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	ok := resp.StatusCode == want || (want == 0 && resp.StatusCode/100 == 2)
	if !ok {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Redacted(), resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}
