package sign

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	ghauthn "github.com/google/go-containerregistry/pkg/authn/github"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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

// Signer signs and attests what a release pushed, one record at a time, so
// that an image can be signed in the job that built it and its index in
// another. Whatever the same identity already signed is left alone.
type Signer interface {
	// SignImage signs one pushed per-arch image (img.Ref) and attaches its
	// SBOM and SLSA provenance, and records that in img.Signature.
	SignImage(ctx context.Context, img *record.Image, agent flake.Image) error
	// SignIndex signs an agent's index, after its images were signed, and
	// says how to verify it.
	SignIndex(ctx context.Context, index name.Digest, images []*record.Image) (*record.Signing, error)
	// Check proves that img.Ref carries a signature, an SBOM and a
	// provenance made by this signer's identity (the same key, or the same
	// certificate identity and issuer under the same CA): what merge
	// demands of a part another job built.
	Check(ctx context.Context, img *record.Image) error
	Mode() Mode
}

// ErrNoIdentity is returned by New when signing was not turned off but there
// is nothing to sign with.
var ErrNoIdentity = errors.New("no signing identity: pass --key (a file, env://VAR or a KMS URI), " +
	"run under GitHub Actions with `permissions: id-token: write` for keyless signing, or pass --sign=false")

type options struct {
	source     Source
	builderID  string
	mode       Mode // "" = choose from the environment
	keyRef     string
	idToken    string
	fulcioURL  string
	rekorURL   string
	tlogUpload *bool
	sbom       []SBOMFormat
	transport  http.RoundTripper
	remoteOpts []remote.Option
	getenv     func(string) string
}

// Option configures New.
type Option func(*options) error

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

// WithKeyless signs with a short-lived Fulcio certificate for the ambient
// OIDC identity (the GitHub Actions token).
func WithKeyless() Option {
	return func(o *options) error { o.mode = ModeKeyless; return nil }
}

// WithIdentityToken signs keyless with this OIDC token instead of asking
// GitHub Actions for one (other CI systems, tests).
func WithIdentityToken(tok string) Option {
	return func(o *options) error { o.mode, o.idToken = ModeKeyless, tok; return nil }
}

// Disabled turns signing off; Sign then only reports that it did nothing.
func Disabled() Option {
	return func(o *options) error { o.mode = ModeOff; return nil }
}

// WithSource says what the provenance records as the source of what is
// signed: the repository, commit and locked flake inputs.
func WithSource(src Source) Option {
	return func(o *options) error { o.source = src; return nil }
}

// WithBuilderID names the builder in provenance (default
// BuilderIDFromEnv: the workflow under GitHub Actions, else "local").
func WithBuilderID(id string) Option {
	return func(o *options) error { o.builderID = id; return nil }
}

// WithFulcioURL points keyless signing at a private Fulcio.
func WithFulcioURL(u string) Option {
	return func(o *options) error {
		o.fulcioURL = u
		return checkEndpoint("Fulcio", u)
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
// is all of them (AllSBOMFormats); naming none is an error.
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

// WithTransport sets the HTTP transport of the Sigstore clients (the OIDC
// token request, Fulcio, Rekor); the default is transport.New().
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error { o.transport = rt; return nil }
}

// WithRemoteOptions sets how the registry is reached (auth, transport). The
// default uses the docker config and GITHUB_TOKEN keychains over
// transport.New().
func WithRemoteOptions(opts ...remote.Option) Option {
	return func(o *options) error { o.remoteOpts = append(o.remoteOpts, opts...); return nil }
}

// withGetenv replaces os.Getenv, for tests of the mode choice.
func withGetenv(f func(string) string) Option {
	return func(o *options) error { o.getenv = f; return nil }
}

// Default Sigstore endpoints.
const (
	PublicFulcioURL = "https://fulcio.sigstore.dev"
	PublicRekorURL  = "https://rekor.sigstore.dev"
)

// New returns the Signer the options ask for. It fails now, before anything
// is built or any tag moves, when signing was not turned off and cannot
// happen: no key and no OIDC token, a key that does not load, or a keyless
// token request that fails.
func New(ctx context.Context, opts ...Option) (Signer, error) {
	o := options{getenv: os.Getenv, fulcioURL: PublicFulcioURL, rekorURL: PublicRekorURL}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.builderID == "" {
		o.builderID = builderID(o.getenv)
	}
	if o.transport == nil {
		o.transport = transport.New()
	}
	if o.mode == "" {
		switch {
		case o.getenv("ACTIONS_ID_TOKEN_REQUEST_URL") != "":
			o.mode = ModeKeyless
		case o.getenv("GITHUB_ACTIONS") == "true":
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
	if o.sbom == nil {
		o.sbom = AllSBOMFormats()
	}
	s := &signer{
		mode:       o.mode,
		source:     o.source,
		builderID:  o.builderID,
		invocation: invocationID(o.getenv),
		sbom:       o.sbom,
		remoteOpts: remoteOptions(o.remoteOpts, o.transport),
		transport:  o.transport,
	}
	if upload {
		s.rekorURL = o.rekorURL
	}
	var err error
	switch o.mode {
	case ModeKey:
		s.id, err = loadKey(ctx, o.keyRef)
	case ModeKeyless:
		s.id, err = newKeyless(ctx, keylessConfig{
			token:     tokenSource(o.idToken, o.getenv, o.transport),
			fulcioURL: o.fulcioURL,
			transport: o.transport,
		})
	default:
		err = fmt.Errorf("unknown signing mode %q", o.mode)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func remoteOptions(extra []remote.Option, rt http.RoundTripper) []remote.Option {
	base := []remote.Option{
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(authn.NewMultiKeychain(authn.DefaultKeychain, ghauthn.Keychain)),
	}
	return append(base, extra...)
}

// BuilderIDFromEnv names the builder for provenance: under GitHub Actions
// the workflow file at its ref (the identity keyless certificates carry),
// elsewhere "local".
func BuilderIDFromEnv() string { return builderID(os.Getenv) }

func builderID(getenv func(string) string) string {
	ref := getenv("GITHUB_WORKFLOW_REF")
	if ref == "" {
		return "local"
	}
	return serverURL(getenv) + "/" + ref
}

// invocationID names the job run that signs: the run and attempt under
// GitHub Actions, with the job; empty elsewhere.
func invocationID(getenv func(string) string) string {
	repo, run := getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID")
	if repo == "" || run == "" {
		return ""
	}
	id := serverURL(getenv) + "/" + repo + "/actions/runs/" + run
	if a := getenv("GITHUB_RUN_ATTEMPT"); a != "" {
		id += "/attempts/" + a
	}
	if job := getenv("GITHUB_JOB"); job != "" {
		id += "#" + job
	}
	return id
}

func serverURL(getenv func(string) string) string {
	server := getenv("GITHUB_SERVER_URL")
	if server == "" {
		server = "https://github.com"
	}
	return strings.TrimSuffix(server, "/")
}

// off is the Signer of --sign=false.
type off struct{}

func (off) Mode() Mode                                                  { return ModeOff }
func (off) SignImage(context.Context, *record.Image, flake.Image) error { return nil }
func (off) Check(context.Context, *record.Image) error                  { return nil }

func (off) SignIndex(context.Context, name.Digest, []*record.Image) (*record.Signing, error) {
	return &record.Signing{Mode: string(ModeOff)}, nil
}
