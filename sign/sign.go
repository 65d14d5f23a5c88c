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
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/internal/redact"
	"github.com/nothingnesses/agent-images/internal/transport"
)

// Request is one agent's release as the pipeline hands it over: everything
// is already pushed by digest, and no tag has moved yet.
type Request struct {
	// Index is the agent's multi-arch index, in its final repository.
	Index name.Digest
	// Platforms are the per-arch images the index lists.
	Platforms []Platform
	Agent     Agent
	Source    Source
	// BuilderID says who built it: the workflow and its ref under GitHub
	// Actions (see BuilderIDFromEnv), "local" elsewhere.
	BuilderID string
}

// Platform is one per-arch image of a release.
type Platform struct {
	Manifest name.Digest
	Platform v1.Platform
	// Image is read for the SBOM: the store paths are taken from its layers.
	Image v1.Image
	// Derivation is the image's .drv store path, when the build knows it.
	Derivation string
}

// Agent is the packaged agent as the flake describes it.
type Agent struct {
	Attr        string
	Name        string
	Version     string
	License     string // an SPDX expression, or "LicenseRef-unfree"
	Description string
}

// Source is where the release was built from.
type Source struct {
	// Repository is the source repository's URL, e.g. https://github.com/o/r.
	Repository string
	Commit     string
	// FlakeInputs are the flake's direct inputs by name (see FlakeInputs).
	FlakeInputs map[string]FlakeInput
}

// Result is what signing one release produced, for release.json and the
// step summary.
type Result struct {
	Mode      Mode      `json:"mode"`
	Index     Subject   `json:"index"`
	Platforms []Subject `json:"platforms,omitempty"`
	// VerifyCommand is the cosign command that checks the index signature.
	VerifyCommand string `json:"verifyCommand,omitempty"`
	// VerifyAttestationCommand checks one per-arch image's attestations.
	VerifyAttestationCommand string `json:"verifyAttestationCommand,omitempty"`
}

// Subject is one signed manifest and where its evidence is stored.
type Subject struct {
	Platform     string   `json:"platform,omitempty"`
	Digest       string   `json:"digest"`
	Signature    string   `json:"signature,omitempty"`
	Attestations string   `json:"attestations,omitempty"`
	Predicates   []string `json:"predicateTypes,omitempty"`
	// Added lists what this run wrote ("signature", predicate types); empty
	// when the subject was already signed and attested.
	Added []string `json:"added,omitempty"`
}

// Unchanged reports whether the run wrote nothing at all.
func (r *Result) Unchanged() bool {
	if len(r.Index.Added) > 0 {
		return false
	}
	for _, p := range r.Platforms {
		if len(p.Added) > 0 {
			return false
		}
	}
	return true
}

// Mode is how a Signer signs.
type Mode string

const (
	ModeOff     Mode = "off"
	ModeKey     Mode = "key"
	ModeKeyless Mode = "keyless"
)

// Signer signs and attests a pushed release.
type Signer interface {
	// Sign signs the index and every per-arch manifest and attaches the SBOMs
	// and provenance to every per-arch image. Subjects already signed by the
	// same identity are left alone.
	Sign(ctx context.Context, r Request) (*Result, error)
	Mode() Mode
}

// ErrNoIdentity is returned by New when signing was not turned off but there
// is nothing to sign with.
var ErrNoIdentity = errors.New("no signing identity: pass --key (a file, env://VAR or a KMS URI), " +
	"run under GitHub Actions with `permissions: id-token: write` for keyless signing, or pass --sign=false")

type options struct {
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
func BuilderIDFromEnv() string {
	ref := os.Getenv("GITHUB_WORKFLOW_REF")
	if ref == "" {
		return "local"
	}
	server := os.Getenv("GITHUB_SERVER_URL")
	if server == "" {
		server = "https://github.com"
	}
	return strings.TrimSuffix(server, "/") + "/" + ref
}

// off is the Signer of --sign=false.
type off struct{}

func (off) Mode() Mode { return ModeOff }

func (off) Sign(_ context.Context, r Request) (*Result, error) {
	res := &Result{Mode: ModeOff, Index: Subject{Digest: r.Index.String()}}
	for _, p := range r.Platforms {
		res.Platforms = append(res.Platforms, Subject{Platform: p.Platform.String(), Digest: p.Manifest.String()})
	}
	return res, nil
}
