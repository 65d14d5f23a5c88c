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
	Mode() Mode
}

// ErrNoIdentity is returned by New when signing was not turned off but there
// is nothing to sign with: no key, and no OIDC token to sign keyless with.
var ErrNoIdentity = errors.New("no signing identity: no key given and no OIDC token available for keyless signing")

type options struct {
	source     Source
	mode       Mode // "" = choose from the environment
	keyRef     string
	fulcioURL  string
	roots      *x509.CertPool // nil: Sigstore's, from its TUF repository
	inter      *x509.CertPool
	rekorURL   string // "" once New decides on no transparency log
	tlogUpload *bool
	sbom       []SBOMFormat
	registry   *transport.Registry
}

// Option configures New.
type Option func(*options) error

// WithRegistry sets how registries are reached: the run's one registry
// client (default: a client of its own).
func WithRegistry(r *transport.Registry) Option {
	return func(o *options) error { o.registry = r; return nil }
}

// WithKey signs with a key: a cosign key file, env://VAR holding one, or a
// KMS URI (awskms://, gcpkms://, azurekms://, hashivault://). The password of
// an encrypted key is read from COSIGN_PASSWORD.
func WithKey(ref string) Option {
	return func(o *options) error {
		if ref == "" {
			return errors.New("WithKey: empty key reference")
		}
		o.mode, o.keyRef = ModeKey, ref
		return nil
	}
}

// Disabled turns signing off; the Signer then only reports that it did
// nothing.
func Disabled() Option {
	return func(o *options) error { o.mode = ModeOff; return nil }
}

// WithSource says what the provenance records as the source of what is
// signed: the repository, commit and locked flake inputs.
func WithSource(src Source) Option {
	return func(o *options) error { o.source = src; return nil }
}

// WithFulcioURL points keyless signing at a private Fulcio.
func WithFulcioURL(u string) Option {
	return func(o *options) error {
		o.fulcioURL = u
		return checkEndpoint("Fulcio", u)
	}
}

// WithFulcioRoots trusts the CA a private Fulcio issues under (roots, and
// intermediates, which may be nil) instead of Sigstore's public roots from
// its TUF repository. It is what the certificates of keyless signing, this
// run's and those another job made, are checked against; such a Fulcio has
// no certificate transparency log, so no SCT is asked of them.
func WithFulcioRoots(roots, intermediates *x509.CertPool) Option {
	return func(o *options) error {
		if roots == nil {
			return errors.New("WithFulcioRoots: no root certificates")
		}
		o.roots, o.inter = roots, intermediates
		return nil
	}
}

// WithRekorURL points transparency log uploads at a private Rekor.
func WithRekorURL(u string) Option {
	return func(o *options) error {
		o.rekorURL = u
		return checkEndpoint("Rekor", u)
	}
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

// WithTlogUpload says whether signatures go to the transparency log. The
// default is yes for keyless and no with a key, so that a private key works
// on a machine with no route to Rekor.
func WithTlogUpload(upload bool) Option {
	return func(o *options) error { o.tlogUpload = &upload; return nil }
}

// WithSBOMFormats says in which formats every per-arch image's SBOM is
// attested, each as an attestation of its own predicate type. The default
// is all of them; naming none is an error.
func WithSBOMFormats(formats ...SBOMFormat) Option {
	return func(o *options) error {
		names := make([]string, len(formats))
		for i, f := range formats {
			names[i] = string(f)
		}
		parsed, err := ParseSBOMFormats(names...)
		o.sbom = parsed
		return err
	}
}

// Default Sigstore endpoints.
const (
	PublicFulcioURL = "https://fulcio.sigstore.dev"
	PublicRekorURL  = "https://rekor.sigstore.dev"
)

// New returns the Signer the options ask for: with a key, or, where an OIDC
// token provider is there (GitHub Actions with id-token: write), keyless.
// It fails now, before anything is built or any tag moves, when signing was
// not turned off and cannot happen: no key and no OIDC token, a key that
// does not load, or a keyless token request that fails.
func New(ctx context.Context, opts ...Option) (Signer, error) {
	o := options{fulcioURL: PublicFulcioURL, rekorURL: PublicRekorURL, sbom: allSBOMFormats()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.mode == "" {
		switch {
		case providers.Enabled(ctx):
			o.mode = ModeKeyless
		case os.Getenv("GITHUB_ACTIONS") == "true":
			return nil, fmt.Errorf("%w (under GitHub Actions ACTIONS_ID_TOKEN_REQUEST_URL is unset: the job lacks id-token: write)", ErrNoIdentity)
		default:
			return nil, ErrNoIdentity
		}
	}
	if o.mode == ModeOff {
		return off{}, nil
	}
	upload := o.mode == ModeKeyless
	if o.tlogUpload != nil {
		upload = *o.tlogUpload
	}
	if o.registry == nil {
		o.registry = transport.NewRegistry()
	}
	if !upload {
		o.rekorURL = "" // no transparency log
	}
	s := &signer{options: o, builderID: BuilderIDFromEnv(), invocation: invocationID()}
	var err error
	if o.mode == ModeKey {
		s.id, err = loadKey(ctx, o.keyRef)
	} else {
		s.id, err = newKeyless(ctx, o)
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

func (off) Mode() Mode                                      { return ModeOff }
func (off) Check(context.Context, name.Digest, Built) error { return nil }
func (off) Signed(context.Context, name.Digest) error       { return nil }

func (off) SignImage(context.Context, name.Digest, *record.Image, flake.Image) (*record.Signature, error) {
	return nil, nil
}

func (off) SignIndex(context.Context, name.Digest, []name.Digest) (*record.Signing, error) {
	return &record.Signing{Mode: string(ModeOff)}, nil
}
