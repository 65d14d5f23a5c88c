package sign

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/providers"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/internal/redact"
	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/record"
)

// Source is where the release was built from.
type Source struct {
	// Repository is the source repository's URL, e.g. https://github.com/o/r.
	Repository string
	Commit     string
	// FlakeInputs are the flake's direct inputs by name (see FlakeInputs).
	FlakeInputs map[string]FlakeInput
}

// Mode is how a Signer signs.
type Mode string

const (
	ModeOff     Mode = "off"
	ModeKey     Mode = "key"
	ModeKeyless Mode = "keyless"
)

// Signer signs and attests what a release pushed, one manifest at a time,
// so that an image can be signed in the job that built it and its index in
// another. Whatever the same identity already signed is left alone. It
// returns what it did; the caller records it.
type Signer interface {
	// SignImage signs the per-arch image img where it lies at d (its
	// digest in one repository), attaches its SBOMs and SLSA provenance
	// (agent is what the flake says of it) there, and returns where they
	// are and what this call added.
	SignImage(ctx context.Context, d name.Digest, img *record.Image, agent flake.Image) (*record.Signature, error)
	// SignIndex signs an agent's index once its per-arch images (by
	// digest, in the same repository) are signed, and says how to verify.
	SignIndex(ctx context.Context, index name.Digest, images []name.Digest) (*record.Signing, error)
	// Check proves that the image at d carries a signature, an SBOM and a
	// provenance made by this signer's identity, and that the provenance
	// says what want says: what a merge demands of a part another job
	// built, and a reused index of each image. SignImage then stores the
	// attestations it found with the same digest elsewhere.
	Check(ctx context.Context, d name.Digest, want Built) error
	// Signed proves that the manifest at d (an index) carries a signature
	// by this signer's identity: an index nobody signed, or someone else
	// did, is not this release's, whatever its annotations say.
	Signed(ctx context.Context, d name.Digest) error
}

// ErrNoIdentity is returned by New when signing was not turned off but there
// is nothing to sign with: no key, and no OIDC token to sign keyless with.
var ErrNoIdentity = errors.New("no signing identity: no key given and no OIDC token available for keyless signing")

// Config says how New signs. Its zero value signs with what the
// environment offers: keyless where an OIDC token provider is there.
type Config struct {
	// Off turns signing off; the Signer then only reports that it did
	// nothing.
	Off bool
	// Key signs with a key: a cosign key file, env://VAR holding one, or a
	// KMS URI (awskms://, gcpkms://, azurekms://, hashivault://). The
	// password of an encrypted key is read from COSIGN_PASSWORD.
	Key string
	// Source is what the provenance records as the source of what is
	// signed.
	Source Source
	// FulcioURL and RekorURL point keyless signing and transparency log
	// uploads at private instances (default: Sigstore's public ones).
	FulcioURL, RekorURL string
	// FulcioRoots (and FulcioIntermediates, which may be nil) are the CA a
	// private Fulcio issues under, trusted instead of Sigstore's public
	// roots from its TUF repository for the certificates of keyless
	// signing, this run's and those another job made. Such a Fulcio has no
	// certificate transparency log, so no SCT is asked of them.
	FulcioRoots, FulcioIntermediates *x509.CertPool
	// TlogUpload says whether signatures go to the transparency log. The
	// default (nil) is yes for keyless and no with a key, so that a private
	// key works on a machine with no route to Rekor.
	TlogUpload *bool
	// SBOMFormats are the formats in which every per-arch image's SBOM is
	// attested, each as an attestation of its own predicate type (default:
	// all of them).
	SBOMFormats []SBOMFormat
	// Registry is how registries are reached: the run's one registry
	// client (default: a client of its own).
	Registry *transport.Registry
}

// checkEndpoint accepts a plain http(s) service address. Credentials, a
// query or a fragment are refused (and not echoed): the address appears in
// errors and logs, so a secret in it would too.
func checkEndpoint(service, u string) error {
	if pub := redact.URL(u); pub != u {
		return fmt.Errorf("the %s URL %s must not carry credentials, a query or a fragment: pass its plain address", service, pub)
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
		return fmt.Errorf("the %s URL %q is not an http(s) address such as https://%s.example.com", service, u, strings.ToLower(service))
	}
	return nil
}

// Default Sigstore endpoints.
const (
	PublicFulcioURL = "https://fulcio.sigstore.dev"
	PublicRekorURL  = "https://rekor.sigstore.dev"
)

// New returns the Signer c asks for: with a key, or, where an OIDC token
// provider is there (GitHub Actions with id-token: write), keyless.
// It fails now, before anything is built or any tag moves, when signing was
// not turned off and cannot happen: no key and no OIDC token, a key that
// does not load, or a keyless token request that fails.
func New(ctx context.Context, c Config) (Signer, error) {
	if c.Off {
		return off{}, nil
	}
	c.FulcioURL, c.RekorURL = cmp.Or(c.FulcioURL, PublicFulcioURL), cmp.Or(c.RekorURL, PublicRekorURL)
	if err := errors.Join(checkEndpoint("Fulcio", c.FulcioURL), checkEndpoint("Rekor", c.RekorURL)); err != nil {
		return nil, err
	}
	if len(c.SBOMFormats) == 0 {
		c.SBOMFormats = allSBOMFormats()
	}
	var err error
	if c.SBOMFormats, err = ParseSBOMFormats(c.SBOMFormats...); err != nil {
		return nil, err
	}
	mode := ModeKey
	switch {
	case c.Key != "":
	case providers.Enabled(ctx):
		mode = ModeKeyless
	case os.Getenv("GITHUB_ACTIONS") == "true":
		return nil, fmt.Errorf("%w (under GitHub Actions ACTIONS_ID_TOKEN_REQUEST_URL is unset: the job lacks id-token: write)", ErrNoIdentity)
	default:
		return nil, ErrNoIdentity
	}
	upload := mode == ModeKeyless
	if c.TlogUpload != nil {
		upload = *c.TlogUpload
	}
	if !upload {
		c.RekorURL = "" // no transparency log
	}
	if c.Registry == nil {
		c.Registry = transport.NewRegistry()
	}
	s := &signer{Config: c, mode: mode, builderID: BuilderIDFromEnv(), invocation: invocationID()}
	if mode == ModeKey {
		s.id, err = loadKey(ctx, c.Key)
	} else {
		s.id, err = newKeyless(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// BuilderIDFromEnv names the builder for provenance: under GitHub Actions
// the workflow file at its ref (the identity keyless certificates carry),
// elsewhere "local".
func BuilderIDFromEnv() string {
	ref := os.Getenv("GITHUB_WORKFLOW_REF")
	if ref == "" {
		return "local"
	}
	return serverURL() + "/" + ref
}

// invocationID names the job run that signs: the run and attempt under
// GitHub Actions, with the job; empty elsewhere.
func invocationID() string {
	repo, run := os.Getenv("GITHUB_REPOSITORY"), os.Getenv("GITHUB_RUN_ID")
	if repo == "" || run == "" {
		return ""
	}
	id := serverURL() + "/" + repo + "/actions/runs/" + run
	if a := os.Getenv("GITHUB_RUN_ATTEMPT"); a != "" {
		id += "/attempts/" + a
	}
	if job := os.Getenv("GITHUB_JOB"); job != "" {
		id += "#" + job
	}
	return id
}

func serverURL() string {
	return strings.TrimSuffix(cmp.Or(os.Getenv("GITHUB_SERVER_URL"), "https://github.com"), "/")
}

// off is the Signer of a release published unsigned, on purpose.
type off struct{}

func (off) Check(context.Context, name.Digest, Built) error { return nil }
func (off) Signed(context.Context, name.Digest) error       { return nil }

func (off) SignImage(context.Context, name.Digest, *record.Image, flake.Image) (*record.Signature, error) {
	return nil, nil
}

func (off) SignIndex(context.Context, name.Digest, []name.Digest) (*record.Signing, error) {
	return &record.Signing{Mode: string(ModeOff)}, nil
}
